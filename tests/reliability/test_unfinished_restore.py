"""An import killed mid-way (SIGKILL, a real process): nothing may take the half-written
graph for a whole one, and the next import repairs it.

The importer is a child process running ``import_graph`` with small batches; its progress
callback stops it, for good, once the instances, their edges and a few events are
written, and the test kills it there. Then: ``export`` refuses and says what to run,
every read of the library and of the API says the restore is unfinished, ``check`` names
it first, and the next ``import`` removes what the killed one left, and what was written
on top of it since (a counter, a live node), and restores the whole file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from hopper_graph import InstanceManager, RestoreInProgress, RestoreUnfinished
from hopper_graph.checker import check_invariants
from hopper_graph.cli import cli
from hopper_graph.transfer import export_graph, read_export
from tests.conftest import wipe
from tests.factories import build_sample

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
IMPORTER = textwrap.dedent("""
    import json, sys, threading
    from hopper_graph import Neo4jSettings, connect
    from hopper_graph.transfer import import_graph, read_export
    settings = Neo4jSettings(**json.loads(sys.argv[1]))
    path, stop_at = sys.argv[2], int(sys.argv[3])
    def progress(done, total):
        if done >= stop_at:
            print("stopped", done, flush=True)
            threading.Event().wait()  # until killed
    import_graph(connect(settings), read_export(path), settings.database, batch_size=2,
                 progress=progress, source=path)
""")


def run(*args: object, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def eventually(attempt: Callable[[], T], within: float = 10.0) -> T:
    """``attempt()`` once it stops raising RestoreInProgress (another process's import
    is seen within restores.TTL)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return attempt()
        except RestoreInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def kill_mid_import(neo4j_source: Any, path: Path, stop_at: int) -> None:
    """Run an import of ``path`` in a child process and SIGKILL it once ``stop_at`` rows
    are written (it waits there, so the kill lands mid-import every time)."""
    importer = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, json.dumps(asdict(neo4j_source.settings)),
         str(path), str(stop_at)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert importer.stdout is not None
        line = importer.stdout.readline()
        assert line.startswith("stopped"), line
    finally:
        importer.send_signal(signal.SIGKILL)
        importer.wait(10)
        if importer.stdout is not None:
            importer.stdout.close()


@pytest.fixture
def env(monkeypatch, neo4j_source, clean_graph):
    """The command line pointed at the test server, through the environment."""
    settings = neo4j_source.settings
    monkeypatch.setenv("HOPPER_NEO4J_URI", settings.uri)
    for name, value in (("USER", settings.user), ("PASSWORD", settings.password),
                        ("DATABASE", settings.database)):
        if value:
            monkeypatch.setenv(f"HOPPER_NEO4J_{name}", value)
        else:
            monkeypatch.delenv(f"HOPPER_NEO4J_{name}", raising=False)
    return clean_graph


@pytest.fixture
def killed(env, driver, database, neo4j_source, tmp_path) -> dict[str, Any]:
    """An export of the sample graph, and a database where its import was killed with the
    instances, the edges and two events written."""
    build_sample(driver, database)
    path = tmp_path / "backup.json"
    run("export", path, "--quiet")
    data = read_export(path)
    wipe(driver, database)
    written = len(data["instances"]) * 2 - 1 + 2  # instances, edges, two events
    kill_mid_import(neo4j_source, path, written)
    return {"path": path, "data": data}


def test_export_refuses_naming_the_restore_and_what_to_run(killed, tmp_path):
    target = tmp_path / "half.json"
    result = run("export", target, code=1)
    assert "restore of" in result.output and str(killed["path"]) in result.output
    assert f"hopper-graph import {killed['path']}" in result.output
    assert not target.exists()


def test_every_library_read_and_write_says_the_restore_is_unfinished(killed, driver,
                                                                       database):
    manager = InstanceManager(driver, database)
    some = killed["data"]["instances"][0]["id"]
    for read in (lambda: manager.get(some), lambda: manager.list(),
                 lambda: manager.get_global_instance(), lambda: manager.events_since(0),
                 lambda: manager.get_instance_tree(some), lambda: manager.history(some)):
        with pytest.raises(RestoreUnfinished) as caught:
            read()
        assert caught.value.details["restore"]["file"] == str(killed["path"])
    with pytest.raises(RestoreUnfinished):
        manager.create(name="live", scope="PROJECT", parent_id=some, project_id="live")
    restore = manager.restores.current()
    assert restore is not None and restore.file == str(killed["path"])
    assert restore.instances == len(killed["data"]["instances"])


def test_every_api_read_answers_503_restore_unfinished(killed, make_app):
    client = make_app().test_client()
    some = killed["data"]["instances"][0]["id"]
    for path in ("/api/v1/instances/global", "/api/v1/instances", "/api/v1/events",
                 f"/api/v1/instances/{some}", f"/api/v1/instances/{some}/tree"):
        reply = client.get(path)
        assert reply.status_code == 503, (path, reply.get_json())
        assert reply.mimetype == "application/problem+json"
        body = reply.get_json()
        assert body["code"] == "restore-unfinished"
        assert body["restore"]["file"] == str(killed["path"])
        assert body["restore"]["rerun"] == f"hopper-graph import {killed['path']}"
        assert reply.headers["Retry-After"]


def test_check_names_the_unfinished_restore_first(killed, driver, database):
    result = run("check", "-o", "json", code=1)
    violations = json.loads(result.output)["violations"]
    assert violations[0]["kind"] == "restore-unfinished"
    assert str(killed["path"]) in violations[0]["message"]
    assert f"hopper-graph import {killed['path']}" in violations[0]["message"]
    assert check_invariants(driver, database)[0].kind == "restore-unfinished"


def test_the_next_import_removes_all_it_left_and_what_came_after(killed, driver, database):
    # what later commands added on top of the half-restored graph: an older export's
    # event counter, and a node some writer added without a look at the marker
    driver.execute_query("MERGE (c:HopperCounter {name: 'event_seq'}) SET c.value = 3",
                         database_=database)
    driver.execute_query("CREATE (:HopperInstance {id: 'stray', name: 'stray', "
                         "scope: 'PROJECT'})", database_=database)
    result = run("import", killed["path"])
    assert "never finished" in result.output
    assert check_invariants(driver, database) == []
    again = eventually(lambda: export_graph(driver, database))
    drop = {"exported_at"}
    assert ({k: v for k, v in again.items() if k not in drop}
            == {k: v for k, v in killed["data"].items() if k not in drop})
    manager = InstanceManager(driver, database)
    assert eventually(manager.get_global_instance) is not None
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE n:Restoring OR n:HopperRestore RETURN count(n) AS n",
        database_=database)
    assert records[0]["n"] == 0
