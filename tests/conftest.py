"""Test fixtures: a real Neo4j for every integration test, chosen in a fixed order.

1. ``HOPPER_TEST_NEO4J_URI``, else ``HOPPER_NEO4J_URI`` (with ``HOPPER_NEO4J_USER``/
   ``_PASSWORD``/``_DATABASE``) when set. The tests wipe that database before each test;
2. testcontainers' ``Neo4jContainer`` (``neo4j:5.26-community``) when a Docker engine answers;
3. the project's own local server (``hopper_graph.local_neo4j``, instance ``test`` on Bolt
   7688), started here and stopped at the end if this session started it.

If none can be had, every integration test fails with a message saying how to get one.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from neo4j import Driver
from werkzeug.serving import make_server

from api import EXTENSION, create_app
from api.extension import SETTINGS
from hopper_graph import HopperInstance, InstanceManager, restores
from hopper_graph.errors import LocalNeo4jError
from hopper_graph.graph import Neo4jSettings, connect
from hopper_graph.local_neo4j import LocalNeo4j
from hopper_graph.repository import InstanceRepository
from hopper_graph.schema import apply_schema
from tests.factories import make_started_project, make_tree

TESTCONTAINERS_IMAGE = "neo4j:5.26-community"


@dataclass
class Neo4jSource:
    kind: str
    settings: Neo4jSettings | None = None
    note: str = ""
    cleanup: list = field(default_factory=list)


def docker_engine_answers() -> tuple[bool, str]:
    """Whether a Docker engine answers ``GET /_ping``, and why not when it does not.

    Asked over a plain socket: the docker SDK leaves sockets open when the engine is absent.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: object = host[len("unix://"):]
        elif host.startswith("tcp://"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            name, _, port = host[len("tcp://"):].partition(":")
            address = (name, int(port or 2375))
        else:
            return False, f"DOCKER_HOST={host} is not a unix:// or tcp:// address"
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(1024)
    except OSError as exc:
        return False, f"no Docker engine answers at {host} ({exc.strerror or exc})"
    if b" 200 " not in answer.split(b"\r\n", 1)[0]:
        return False, f"the Docker engine at {host} did not answer /_ping with 200"
    return True, ""


def _choose_source() -> Neo4jSource:
    test_uri = os.environ.get("HOPPER_TEST_NEO4J_URI")
    if test_uri:  # a database for the tests only: they wipe it before every test
        configured = Neo4jSettings.from_env(default_uri=test_uri)
        assert configured is not None
        configured = Neo4jSettings(test_uri, configured.user, configured.password,
                                   configured.database, configured.timeout)
        return Neo4jSource("configured", configured, f"HOPPER_TEST_NEO4J_URI={test_uri}")
    configured = Neo4jSettings.from_env()
    if configured is not None:
        return Neo4jSource("configured", configured, f"HOPPER_NEO4J_URI={configured.uri}")
    has_docker, why = docker_engine_answers()
    if has_docker:
        from testcontainers.community.neo4j import Neo4jContainer

        container = Neo4jContainer(TESTCONTAINERS_IMAGE).start()
        settings = Neo4jSettings(container.get_connection_url(), "neo4j", container.password)
        return Neo4jSource("testcontainers", settings, TESTCONTAINERS_IMAGE, [container.stop])
    server = LocalNeo4j.for_tests(_claim_slot())
    was_running = server.is_running()
    try:
        server.start()
    except LocalNeo4jError as exc:
        return Neo4jSource("none", note=(
            f"testcontainers skipped: {why}; the local server failed: {exc}. Get a Neo4j by "
            "setting HOPPER_NEO4J_URI, by running a Docker engine, or fix the local server "
            "(scripts/neo4j-local start --test needs Java 17 and Maven Central)."))
    cleanup = [] if was_running else [server.stop]
    return Neo4jSource("local", Neo4jSettings(server.uri), f"testcontainers skipped: {why}; "
                       f"local server {server.uri} ({server.home})", cleanup)


_SOURCE: Neo4jSource | None = None
_SLOT_LOCK: object = None


SLOT_LOCKS = Path(tempfile.gettempdir()) / "hopper-graph-test-slots"
"""Where the slot locks live: one folder for the whole machine, as its ports are. (Kept
beside each checkout's Neo4j cache, two checkouts with caches of their own both took slot
0 while neither server was up yet, and shared, and wiped, one graph.)"""


def _claim_slot() -> int:
    """The first local test server no other running test session holds (a file lock per
    slot, held until this process exits), so concurrent sessions never share a graph."""
    global _SLOT_LOCK
    root = SLOT_LOCKS
    root.mkdir(parents=True, exist_ok=True)
    for slot in range(16):
        handle = open(root / f"test-slot-{slot}.lock", "w")  # noqa: SIM115 - held open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        server = LocalNeo4j.for_tests(slot)
        if server.pid() is None and _port_in_use(server.bolt_port):
            handle.close()  # something else listens on this slot's port: skip it
            continue
        _SLOT_LOCK = handle
        return slot
    raise LocalNeo4jError("16 test sessions already hold a local Neo4j")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pytest_report_header(config: pytest.Config) -> list[str]:
    has_docker, why = docker_engine_answers()
    return [f"neo4j: HOPPER_NEO4J_URI={os.environ.get('HOPPER_NEO4J_URI') or '(unset)'}; "
            f"testcontainers: {'available' if has_docker else 'skipped, ' + why}"]


@pytest.fixture(scope="session")
def neo4j_source() -> Iterator[Neo4jSource]:
    global _SOURCE
    _SOURCE = _choose_source()
    if _SOURCE.settings is None:
        pytest.fail(f"no Neo4j for the integration tests: {_SOURCE.note}", pytrace=False)
    print(f"\nneo4j for tests: {_SOURCE.kind}: {_SOURCE.note}")
    yield _SOURCE
    for stop in _SOURCE.cleanup:
        stop()
    if _SLOT_LOCK is not None:
        _SLOT_LOCK.close()  # type: ignore[attr-defined]  # frees the slot for others


@pytest.fixture(scope="session")
def driver(neo4j_source: Neo4jSource) -> Iterator[Driver]:
    assert neo4j_source.settings is not None
    drv = connect(neo4j_source.settings)
    drv.verify_connectivity()
    apply_schema(drv, neo4j_source.settings.database)
    yield drv
    drv.close()


@pytest.fixture(scope="session")
def database(neo4j_source: Neo4jSource) -> str | None:
    assert neo4j_source.settings is not None
    return neo4j_source.settings.database


def wipe(driver: Driver, database: str | None) -> None:
    """Remove the instance graph and its history; the schema and its record stay."""
    with driver.session(database=database) as session:
        # CALL ... IN TRANSACTIONS needs an auto-commit transaction: session.run gives one.
        session.run(
            "MATCH (n) WHERE n:HopperInstance OR n:InstanceEvent OR n:HopperCounter "
            "OR n:HopperRestore "
            "OR n:HopperToken OR n:Lien OR n:Label "
            "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    restores.forget(driver, database)  # no restore is unfinished now, in this process


@pytest.fixture
def clean_graph(driver: Driver, database: str | None) -> Driver:
    wipe(driver, database)
    return driver


@pytest.fixture
def repo(clean_graph: Driver, database: str | None) -> InstanceRepository:
    return InstanceRepository(clean_graph, database)


@pytest.fixture
def manager(clean_graph: Driver, database: str | None) -> InstanceManager:
    return InstanceManager(clean_graph, database)


@pytest.fixture
def project(manager: InstanceManager) -> HopperInstance:
    """A started PROJECT "project" (project_id "proj") under a started GLOBAL."""
    return make_started_project(manager)


@pytest.fixture
def tree(manager: InstanceManager) -> tuple[HopperInstance, ...]:
    """GLOBAL -> two PROJECTs, one with a child ORCHESTRATION: (g, a, b, a-run)."""
    return make_tree(manager)


@pytest.fixture
def clear_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps built here take their settings from the arguments alone, never the environment
    (the session's driver exists by now)."""
    for key in SETTINGS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def make_app(clean_graph: Driver, database: str | None,
             clear_settings: None) -> Iterator[Callable[..., Flask]]:
    """Build apps over the wiped test graph (the session's driver, not closed by them)."""
    apps: list[Flask] = []

    def make(**config: Any) -> Flask:
        app = create_app({"TESTING": True, "HOPPER_DRIVER": clean_graph,
                          "HOPPER_NEO4J_DATABASE": database, "HOPPER_APPLY_SCHEMA": False,
                          **config})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions[EXTENSION].close()


# -- the README's tour (tests/test_readme.py, tests/test_cli_docs.py) ----------------------
@pytest.fixture
def api_url(clean_graph: Driver, database: str | None,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The API served on a free local port, over the wiped test graph, for the tour's curl."""
    for key in SETTINGS:  # as the README's server would be: no token, nothing from outside
        monkeypatch.delenv(key, raising=False)
    app = create_app({"HOPPER_DRIVER": clean_graph, "HOPPER_NEO4J_DATABASE": database,
                      "HOPPER_APPLY_SCHEMA": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/v1"
    server.shutdown()
    thread.join()
    app.extensions[EXTENSION].close()


@pytest.fixture
def shell_env(neo4j_source) -> dict[str, str]:
    """What the tour's shell sees: the test database as HOPPER_NEO4J_URI, and this venv's
    programs (hopper-graph) first on PATH, as ``. .venv/bin/activate`` would put them."""
    settings = neo4j_source.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPPER_")}
    env["HOPPER_NEO4J_URI"] = settings.uri
    for key, value in (("USER", settings.user), ("PASSWORD", settings.password),
                       ("DATABASE", settings.database)):
        if value:
            env[f"HOPPER_NEO4J_{key}"] = value
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env
