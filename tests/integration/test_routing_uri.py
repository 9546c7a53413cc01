"""A neo4j:// (routing) URI works as well as bolt://: reads go as read transactions and
writes as write transactions, which is what lets a cluster route them."""

from __future__ import annotations

import pytest

from hopper_graph import InstanceManager, Neo4jSettings, connect
from tests.conftest import wipe
from tests.factories import make_global


def test_the_library_works_over_a_routing_uri(neo4j_source, database):
    settings = neo4j_source.settings
    if not settings.uri.startswith("bolt://"):
        pytest.skip(f"the test server's URI is {settings.uri}, not a bolt:// one to rewrite")
    routed = Neo4jSettings("neo4j://" + settings.uri[len("bolt://"):], settings.user,
                           settings.password, database, settings.timeout)
    with connect(routed) as driver:
        wipe(driver, database)
        manager = InstanceManager(driver, database)
        g = make_global(manager, name="g")
        manager.start(g.id)
        assert manager.get(g.id).status.value == "ACTIVE"
        assert [e.event for e in manager.history(g.id)] == ["create", "start"]
