"""Every named query in cypher/ is planned by the real server (EXPLAIN: nothing runs), so a
typo in a .cypher file fails here rather than in production; plus checks on the files'
conventions that the loader itself does not make."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from hopper_graph.queries import QUERIES, NamedQuery

# Sample values for the parameters whose type matters to the planner (SKIP/LIMIT want
# integers, UNWIND wants a list, SET n = wants a map). Anything else is planned with null.
_NOW = datetime(2024, 1, 1, tzinfo=UTC)
SAMPLES: dict[str, Any] = {
    "id": str(uuid.uuid4()), "parent_id": str(uuid.uuid4()), "instance_id": str(uuid.uuid4()),
    "project_id": "sample-project", "name": "sample", "scope": "PROJECT", "status": "ACTIVE",
    "skip": 0, "limit": 10, "after": 0, "max_depth": None,
    "now": _NOW, "cutoff": _NOW,
    "props": {"id": str(uuid.uuid4())}, "changes": {},
    "events": [], "rows": [], "parent_ids": [], "ids": [],
}

_FORMATTING_ARTEFACTS = re.compile(r"\{\d*\}|%[sdr]|%\(\w+\)[sdr]|\{[A-Za-z_]\w*!r\}")


def params_for(query: NamedQuery) -> dict[str, Any]:
    return {name: SAMPLES.get(name) for name in query.params}


def declared_params_line(query: NamedQuery) -> str:
    """The raw ``// params:`` line of a query, read back from its file."""
    lines = (QUERIES.folder / query.source).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.strip() == f"// name: {query.name}")
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped.startswith("// params:"):
            return stripped[len("// params:"):].strip()
        if not stripped.startswith("//"):
            break
    raise AssertionError(f"{query.name}: no params line in its header")


ALL_QUERIES = sorted(QUERIES, key=lambda q: q.name)


def test_there_are_named_queries():
    assert len(ALL_QUERIES) >= 10


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_the_server_plans_every_named_query(driver, database, query):
    """EXPLAIN parses, semantically checks and plans the query without running it."""
    _, summary, _ = driver.execute_query(f"EXPLAIN {query.text}", params_for(query),
                                         database_=database)
    assert summary.plan is not None, f"{query.name} ({query.source}) was not planned"
    assert summary.query_type in ("r", "rw", "w", "s")


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_every_query_is_planned_with_all_parameters_null(driver, database, query):
    """Browser users start from ``:param x => null``; the plan must not depend on values."""
    nulls = dict.fromkeys(query.params)
    _, summary, _ = driver.execute_query(f"EXPLAIN {query.text}", nulls, database_=database)
    assert summary.plan is not None


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_no_string_formatting_artefacts(query):
    found = _FORMATTING_ARTEFACTS.findall(query.text)
    assert not found, f"{query.name} ({query.source}) contains {found}"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_params_are_declared_or_explicitly_none(query):
    line = declared_params_line(query)
    if query.params:
        assert line != "-"
        assert {p.strip().lstrip("$") for p in line.split(",")} == set(query.params)
    else:
        assert line == "-", f"{query.name} declares no parameters but not as '// params: -'"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_no_query_ends_with_a_semicolon(query):
    """The driver sends one statement; Browser runs it as written after :param lines."""
    assert not query.text.rstrip().endswith(";"), query.name
