"""testcontainers' Neo4jContainer (the second choice of the fixtures, after HOPPER_NEO4J_URI):
run for real when a Docker engine answers, otherwise skipped with the reason, never silently."""

from __future__ import annotations

import pytest

from hopper_graph.schema import MIGRATIONS, apply_schema, schema_version
from tests.conftest import TESTCONTAINERS_IMAGE, docker_engine_answers


def test_the_image_is_neo4j_5_26_community():
    assert TESTCONTAINERS_IMAGE == "neo4j:5.26-community"


def test_neo4j_container_runs_the_schema_when_docker_answers():
    answers, why = docker_engine_answers()
    if not answers:
        assert why, "docker_engine_answers() must say why Docker is unavailable"
        pytest.skip(f"testcontainers Neo4jContainer not run: {why}")
    # testcontainers.neo4j is a deprecated alias that warns (an error under
    # filterwarnings=error); the community module is the real one.
    from testcontainers.community.neo4j import Neo4jContainer

    with Neo4jContainer(TESTCONTAINERS_IMAGE) as container, container.get_driver() as driver:
        records, _, _ = driver.execute_query(
            "CALL dbms.components() YIELD versions, edition RETURN versions[0] AS version, "
            "edition")
        assert records[0]["version"].startswith("5.26.")
        assert records[0]["edition"] == "community"
        apply_schema(driver)
        assert schema_version(driver) == MIGRATIONS[-1].version


@pytest.mark.parametrize("host, expected", [
    ("unix:///nonexistent/docker.sock", "no Docker engine answers at "
                                        "unix:///nonexistent/docker.sock"),
    ("ftp://example.org", "DOCKER_HOST=ftp://example.org is not a unix:// or tcp:// address"),
])
def test_the_reason_names_the_docker_host(monkeypatch, host, expected):
    monkeypatch.setenv("DOCKER_HOST", host)
    answers, why = docker_engine_answers()
    assert not answers
    assert why.startswith(expected), why


def test_a_closed_tcp_port_is_a_clear_reason(monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    answers, why = docker_engine_answers()
    assert not answers
    assert f"no Docker engine answers at tcp://127.0.0.1:{port}" in why
