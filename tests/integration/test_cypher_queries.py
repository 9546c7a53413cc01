"""Every named query in cypher/ is planned by the real server (EXPLAIN: nothing runs), so a
typo in a .cypher file fails here rather than in production. The files' conventions, which
need no server, are checked in tests/unit/test_queries.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from hopper_graph.queries import NamedQuery
from tests.unit.test_queries import ALL_QUERIES

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

def params_for(query: NamedQuery) -> dict[str, Any]:
    return {name: SAMPLES.get(name) for name in query.params}


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


