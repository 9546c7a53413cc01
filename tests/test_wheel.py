"""The built wheel carries what the library loads: installed in a fresh venv outside the
checkout, hopper_graph finds every named query and every scope template inside the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

from hopper_graph.queries import Queries

CHECKOUT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]


def checkout_template(scope: str) -> dict:
    """A scope's template as written in the checkout, without its ``scope:`` line."""
    path = CHECKOUT / "config" / "instances" / f"{scope.lower()}-instance.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data.pop("scope") == scope
    return data

# Runs in the fresh venv, from a folder outside the checkout: prints what the installed
# package loaded, for the test to compare with the checkout.
PROBE = """
import json, sys
import hopper_graph
from hopper_graph import config
from hopper_graph.queries import QUERIES
from hopper_graph.resources import cypher_dir, templates_dir

config.load_templates()
print(json.dumps({
    "package": hopper_graph.__file__,
    "version": hopper_graph.__version__,
    "prefix": sys.prefix,
    "folder": str(QUERIES.folder),
    "cypher_dir": str(cypher_dir()),
    "queries": {q.name: q.text for q in QUERIES},
    "template_dir": str(templates_dir()),
    "scopes": config.registered_scopes(),
    "defaults": {scope: config.scope_defaults(scope) for scope in config.registered_scopes()},
}))
"""


def clean_env() -> dict[str, str]:
    """The environment minus whatever could point the new interpreter at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "HOPPER_CONFIG_DIR")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, (
        f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}")
    return result


def packaged_queries(wheel: Path, into: Path) -> dict[str, str]:
    """The named queries of the .cypher files inside the wheel, parsed here."""
    with zipfile.ZipFile(wheel) as archive:
        members = [n for n in archive.namelist()
                   if n.startswith("hopper_graph/_data/cypher/") and n.endswith(".cypher")]
        archive.extractall(into, members)
    return {q.name: q.text for q in Queries(into / "hopper_graph" / "_data" / "cypher")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(CHECKOUT)],
        cwd=CHECKOUT)
    [built] = outdir.glob("hopper_graph-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_lists_every_cypher_file_and_template(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for path in sorted((CHECKOUT / "cypher").glob("*.cypher")):
        assert f"hopper_graph/_data/cypher/{path.name}" in names
    for path in sorted((CHECKOUT / "config" / "instances").glob("*.yaml")):
        assert f"hopper_graph/_data/config/instances/{path.name}" in names
    assert "hopper_graph/queries.py" in names and "hopper_graph/config.py" in names
    assert not any(name.startswith(("tests/", "cypher/", "config/")) for name in names)


@pytest.mark.slow
def test_installed_wheel_loads_every_query_and_template_from_the_package(wheel, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert CHECKOUT not in outside.resolve().parents
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=outside)

    probe = run([str(python), "-c", PROBE], cwd=outside)
    seen = json.loads(probe.stdout)

    site_packages = Path(seen["package"]).resolve().parent.parent
    assert site_packages.name == "site-packages"
    assert Path(seen["prefix"]).resolve() == env_dir.resolve()
    assert site_packages.is_relative_to(env_dir.resolve())
    assert seen["version"] == PROJECT["version"]

    folder = Path(seen["folder"]).resolve()
    assert folder == site_packages / "hopper_graph" / "_data" / "cypher"
    assert Path(seen["cypher_dir"]).resolve() == folder
    assert len(seen["queries"]) > 0
    assert seen["queries"] == packaged_queries(wheel, tmp_path / "unpacked")

    template_dir = Path(seen["template_dir"]).resolve()
    assert template_dir == site_packages / "hopper_graph" / "_data" / "config" / "instances"
    assert set(seen["scopes"]) >= {"GLOBAL", "PROJECT", "ORCHESTRATION"}
    for scope in ("GLOBAL", "PROJECT", "ORCHESTRATION"):
        assert seen["defaults"][scope] == checkout_template(scope), scope
