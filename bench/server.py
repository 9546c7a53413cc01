"""Which Neo4j the benchmark uses: ``HOPPER_NEO4J_URI`` when set, else the project's
local instance ``bench`` (Bolt 7700), so a developer's and the tests' graphs are left
alone."""

from __future__ import annotations

import os

from hopper_graph.local_neo4j import LocalNeo4j


def local_bench_server(**options: str) -> LocalNeo4j:
    """The project's local ``bench`` instance (not started)."""
    return LocalNeo4j(name="bench", bolt_port=7700, http_port=7701, **options)


def bench_uri() -> str:
    """The Bolt URI of the Neo4j the benchmark uses."""
    return os.environ.get("HOPPER_NEO4J_URI") or local_bench_server().uri
