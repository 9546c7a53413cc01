"""The README's quick tour runs as written: its curl block against the API on a real socket,
its command-line block against the same Neo4j, on a fresh graph and again on one the tour
(or someone else) already built. The blocks are read from README.md, so they cannot drift.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from hopper_graph import InstanceManager, NotFound
from tests.factories import make_global

ROOT = Path(__file__).resolve().parents[1]
README_API = "API=http://127.0.0.1:8000/api/v1"
ACTIVATE = ". .venv/bin/activate"


def tour_blocks() -> tuple[str, str]:
    """The curl block and the command-line block of the README's "Quick tour"."""
    section = (ROOT / "README.md").read_text().split("## Quick tour", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    curl = [b for b in blocks if "curl " in b]
    cli = [b for b in blocks if "hopper-graph " in b]
    assert len(curl) == len(cli) == 1, blocks
    return curl[0], cli[0]


def run_curl_block(api_url: str, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Run the curl block with bash (stopping at the first failing step) against
    ``api_url``; the ids it ended with, and what it printed."""
    block, _ = tour_blocks()
    assert README_API in block
    script = block.replace(README_API, f"API={api_url}") + 'echo "ids: $G $P $R"\n'
    out = _bash(script, env)
    ids = dict(zip("GPR", out.rsplit("ids: ", 1)[1].split(), strict=True))
    return ids, out


def run_cli_block(env: dict[str, str]) -> str:
    _, block = tour_blocks()
    assert block.startswith(ACTIVATE + "\n")  # the test puts the venv on PATH itself
    # Piped, the CLI's summaries ("no violations") are notes on stderr: read both.
    return _bash(block.replace(ACTIVATE, "", 1), env, stderr_too=True)


def _bash(script: str, env: dict[str, str], stderr_too: bool = False) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr if stderr_too else done.stdout


@pytest.mark.slow  # about twenty hopper-graph processes, each starting Python
def test_the_tour_runs_on_a_fresh_graph_and_again(api_url, shell_env, manager):
    first, out = run_curl_block(api_url, shell_env)
    g, p, r = (manager.get(first[k]) for k in "GPR")
    assert (g.name, p.name, r.name) == ("hopper", "website", "website-run-1")
    assert (p.parent_id, r.parent_id, r.project_id) == (g.id, p.id, "website")
    assert (g.status.value, p.status.value, r.status.value) == ("ACTIVE", "CREATED", "CREATED")
    assert "HTTP/1.1 409" in out and '"allowed_events":["start","archive"]' in out

    again, out = run_curl_block(api_url, shell_env)
    assert again == first  # each step found what the first run made
    assert '"code":"invalid-transition"' in out  # the GLOBAL was ACTIVE already

    for _ in range(2):  # the command-line block, then the whole tour once more
        out = run_cli_block(shell_env)
        assert "no violations" in out
        with pytest.raises(NotFound):  # the finished run is deleted, its history kept
            manager.get(r.id)
        assert [e.event for e in manager.history(r.id)][-3:] == ["stop", "archive", "delete"]
        assert manager.get(p.id).status.value == "STOPPED"
        ids, _ = run_curl_block(api_url, shell_env)
        assert (ids["G"], ids["P"]) == (g.id, p.id)
        r = manager.get(ids["R"])
        assert r.status.value == "CREATED"


def test_the_curl_tour_adopts_a_global_that_is_there(api_url, shell_env,
                                                    manager: InstanceManager):
    there = make_global(manager, name="main")
    ids, _ = run_curl_block(api_url, shell_env)
    assert ids["G"] == there.id
    assert manager.get(ids["P"]).parent_id == there.id


def test_make_run_takes_the_port_the_readme_names():
    """`make run PORT=9000` serves on 9000; without it, on 8000 (the README's two lines)."""
    checkout = Path(__file__).resolve().parents[1]
    readme = (checkout / "README.md").read_text()
    assert "make run PORT=9000" in readme
    for extra, port in (([], "8000"), (["PORT=9000"], "9000")):
        dry = subprocess.run(["make", "-n", "-C", str(checkout), "run", *extra],
                             capture_output=True, text=True, check=True, timeout=60)
        assert f"hopper-graph serve --port {port}" in dry.stdout, dry.stdout
