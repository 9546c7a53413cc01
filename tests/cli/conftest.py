"""What every command-line test shares: the command line pointed at the test server."""

from __future__ import annotations

import pytest

from hopper_graph.graph import Neo4jSettings


@pytest.fixture
def env(monkeypatch, neo4j_source, clean_graph):
    """Point the command line at the test server, through the environment as a user would."""
    point_at(monkeypatch, neo4j_source.settings)
    monkeypatch.setenv("HOPPER_ACTOR", "cli-test")
    return clean_graph


def point_at(monkeypatch: pytest.MonkeyPatch, settings: Neo4jSettings) -> None:
    """Set (or unset) this process's HOPPER_NEO4J_* variables to these settings."""
    monkeypatch.setenv("HOPPER_NEO4J_URI", settings.uri)
    for name, value in (("USER", settings.user), ("PASSWORD", settings.password),
                        ("DATABASE", settings.database)):
        if value:
            monkeypatch.setenv(f"HOPPER_NEO4J_{name}", value)
        else:
            monkeypatch.delenv(f"HOPPER_NEO4J_{name}", raising=False)
