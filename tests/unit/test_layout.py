"""The layout, checked over the source: no module reaches through another object to run a
query (``manager.repository.graph``, ``lifecycle.repository.rows``). Each module that owns
a concept runs its named queries through the Graph or repository handed to it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("hopper_graph", "api")

QUERY_RUNNERS = frozenset({"repository", "graph"})
"""The attributes that hold what runs queries: an object may use its own (``self.graph``),
never another's (``manager.repository``, ``self.repository.graph``)."""


def reaches_through(source: str) -> list[tuple[int, str]]:
    """Each place in ``source`` that reads a query runner off anything but ``self``: the
    line and the expression, e.g. ``(440, "self.repository.graph")``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr in QUERY_RUNNERS
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
            found.append((node.lineno, ast.unparse(node)))
    return found


def sources() -> list[Path]:
    return sorted(p for top in CHECKED for p in (ROOT / top).rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reaches_through_another_object_to_run_a_query(path):
    found = reaches_through(path.read_text(encoding="utf-8"))
    assert not found, (f"{path.relative_to(ROOT)} runs queries through another object's "
                       f"repository or graph (hand the module what it needs): {found}")


# The reach-throughs this check was written against (main before issue 20), and the shapes
# that stay allowed: the check must tell them apart, or it guards nothing.
REACHING = [
    "rows = self.repository.graph.write_rows(QUERY, id=instance_id)",
    "return _head(manager.repository.graph)",
    "poller = broadcaster(manager.repository.graph)",
    "rows = lifecycle.repository.rows(QUERY, limit=size + 1)",
    "deleted, refused = lifecycle.repository.write(work)",
    "repository = self.manager.repository",
    "graph = self.lifecycle.graph",
    "graph = manager.graph",
    "row = manager.repository.row(QUERY)",
]
ALLOWED = [
    "rows = self.graph.write_rows(QUERY, id=instance_id)",
    "row = self.repository.row(QUERY)",
    "rows = repository.rows(QUERY, limit=size + 1)",
    "rows = graph.read_rows(QUERY)",
    "self.repository = InstanceRepository(self.graph)",
    "self.repository.on_commit = self.feed.publish",
    "instances = self.manager.find_by_scope_and_names(keys)",
    "from hopper_graph.graph import Graph",
]


@pytest.mark.parametrize("line", REACHING)
def test_the_check_finds_a_reach_through(line):
    assert reaches_through(line)


@pytest.mark.parametrize("line", ALLOWED)
def test_the_check_allows_an_objects_own_runners_and_handed_ones(line):
    assert reaches_through(line) == []
