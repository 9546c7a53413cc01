"""The library never imports the API: api/ depends on hopper_graph/, never the reverse."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT_ALL = """
import importlib, pkgutil, sys
import hopper_graph
names = [m.name for m in pkgutil.walk_packages(hopper_graph.__path__, "hopper_graph.")]
for name in names:
    importlib.import_module(name)
assert len(names) > 20, names
print(sorted(m for m in sys.modules if m == "api" or m.startswith("api.")))
"""


def test_importing_every_library_module_imports_no_api_module():
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_library_module_imports_the_api_even_inside_a_function():
    """Importing is not enough to see an import made late, in a function (``serve`` once
    did ``import api``): every import statement of the library's source is read."""
    offenders = []
    for path in sorted((ROOT / "hopper_graph").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n == "api" or n.startswith("api.")]
    assert offenders == []
