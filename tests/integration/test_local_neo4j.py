"""The project's own Neo4j server (hopper_graph/local_neo4j.py, scripts/neo4j-local).

The slow tests start a scratch instance on free ports beside the dev and test servers. It
shares the cache's lib/ folder (the ~135 MB of jars are never fetched again) and its own
folder is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from hopper_graph.local_neo4j import LocalNeo4j, default_cache_dir

CHECKOUT = Path(__file__).resolve().parents[2]
SCRIPT = CHECKOUT / "scripts" / "neo4j-local"
STATUS_LINE = re.compile(r"^neo4j-local\[(?P<name>[\w.-]+)\]: (?P<state>running|starting|stopped)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def scratch_instance() -> LocalNeo4j:
    bolt = free_port()
    http = free_port()
    while http == bolt:
        http = free_port()
    return LocalNeo4j(name=f"scratch-{uuid.uuid4().hex[:8]}", bolt_port=bolt, http_port=http,
                      heap="512m", pagecache="64m", cache_dir=default_cache_dir())


def remove_instance_folder(server: LocalNeo4j) -> None:
    """Delete the scratch instance's own folder, never the shared jars."""
    home = server.home.resolve()
    assert home.parent == server.root.resolve() and home.name.startswith("scratch-"), home
    assert home != server.lib_dir.resolve()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def scratch() -> Iterator[LocalNeo4j]:
    server = scratch_instance()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            remove_instance_folder(server)


def test_a_never_started_instance_is_stopped_and_stop_is_harmless():
    server = scratch_instance()
    try:
        assert server.pid() is None
        assert not server.is_running()
        assert STATUS_LINE.match(server.status())["state"] == "stopped"
        assert server.status() == f"neo4j-local[{server.name}]: stopped"
        server.stop()  # idempotent: nothing to stop is not an error
        assert not server.home.exists(), "status/stop must not create the instance folder"
    finally:
        remove_instance_folder(server)


def test_the_default_cache_is_git_ignored_and_holds_the_jars():
    root = default_cache_dir()
    if "HOPPER_NEO4J_HOME" not in os.environ:
        assert root == CHECKOUT / ".neo4j-local"
        assert ".neo4j-local/" in (CHECKOUT / ".gitignore").read_text().splitlines()
    assert LocalNeo4j().lib_dir == root / "lib"


@pytest.mark.slow
def test_start_is_idempotent_and_serves_bolt_and_browser(scratch):
    started = time.monotonic()
    scratch.start()
    assert time.monotonic() - started < 180
    pid = scratch.pid()
    assert pid is not None and process_alive(pid)
    assert scratch.is_running()

    again = time.monotonic()
    scratch.start()
    assert time.monotonic() - again < 5, "a second start must return at once"
    assert scratch.pid() == pid

    status = scratch.status()
    match = STATUS_LINE.match(status)
    assert match and match["state"] == "running", status
    assert match["name"] == scratch.name
    assert f"pid {pid}" in status and scratch.uri in status and scratch.browser_url in status

    with GraphDatabase.driver(scratch.uri, auth=None) as drv:
        records, _, _ = drv.execute_query("CALL dbms.components() YIELD name, versions, edition "
                                          "RETURN versions[0] AS version, edition")
    assert records[0]["version"].startswith("5.26.")
    assert records[0]["edition"] == "community"

    assert scratch.browser_url == (f"http://127.0.0.1:{scratch.http_port}/browser/"
                                   f"?dbms=bolt://127.0.0.1:{scratch.bolt_port}"
                                   "&preselectAuthMethod=NO_AUTH")
    with urllib.request.urlopen(scratch.browser_url, timeout=30) as response:
        assert response.status == 200
        assert b"<html" in response.read().lower()


@pytest.mark.slow
def test_data_survives_stop_and_start_and_stop_leaves_nothing(scratch):
    scratch.start()
    marker = str(uuid.uuid4())
    with GraphDatabase.driver(scratch.uri, auth=None) as drv:
        drv.execute_query("CREATE (:ScratchMarker {value: $value})", value=marker)

    pid = scratch.pid()
    assert pid is not None
    scratch.stop()
    assert scratch.pid() is None
    assert not process_alive(pid), "the server process outlived stop()"
    assert not scratch.pid_file.exists()
    assert not port_open(scratch.bolt_port) and not port_open(scratch.http_port)
    assert STATUS_LINE.match(scratch.status())["state"] == "stopped"
    assert (scratch.home / "data").is_dir()
    scratch.stop()  # stopping a stopped server is harmless

    scratch.start()
    assert scratch.pid() not in (None, pid)
    with GraphDatabase.driver(scratch.uri, auth=None) as drv:
        records, _, _ = drv.execute_query(
            "MATCH (m:ScratchMarker {value: $value}) RETURN count(m) AS n", value=marker)
    assert records[0]["n"] == 1
    scratch.stop()
    assert not port_open(scratch.bolt_port)


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], cwd=CHECKOUT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_script_status_of_the_test_server_prints_one_status_line():
    result = run_script("status", "--test")
    assert result.returncode in (0, 3), result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    match = STATUS_LINE.match(lines[0])
    assert match and match["name"] == "test", lines[0]
    assert (match["state"] == "stopped") == (result.returncode == 3)


def test_script_refuses_an_unknown_command_with_usage():
    result = run_script("restart")
    assert result.returncode == 2
    assert "usage: neo4j-local start|stop|status" in result.stderr


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)
    with contextlib.suppress(UnicodeDecodeError):
        assert SCRIPT.read_text().startswith("#!")
