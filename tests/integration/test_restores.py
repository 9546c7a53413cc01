"""The restore guard of the manager's Graph: asked once per TTL, not once per read, and an
import in this process is seen at once (the SIGKILL faults are in tests/reliability)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from hopper_graph import Conflict, InstanceManager, RestoreUnfinished, restores
from hopper_graph.checker import check_invariants
from hopper_graph.transfer import export_graph, import_graph
from tests.conftest import wipe
from tests.factories import make_tree
from tests.threads import run_threads


def test_reads_ask_for_the_marker_once_per_ttl(manager, monkeypatch):
    leaf = make_tree(manager)[-1]
    asked: list[int] = []
    original = restores.unfinished

    def counted(graph):
        asked.append(1)
        return original(graph)
    monkeypatch.setattr(restores, "unfinished", counted)
    monkeypatch.setattr(manager.restores, "ttl", 3600.0)
    restores.forget(manager.graph.driver, manager.graph.database)
    for _ in range(20):
        manager.get(leaf.id)
    manager.list()
    assert len(asked) == 1


def test_an_import_in_this_process_is_seen_at_once(manager, driver, database, monkeypatch):
    make_tree(manager)
    data = export_graph(driver, database)
    wipe(driver, database)
    monkeypatch.setattr(manager.restores, "ttl", 3600.0)
    assert manager.get_global_instance() is None  # "no restore" is cached for an hour

    def interrupted(done, total):
        if done:  # the first batch is written: the marker is there
            with pytest.raises(RestoreUnfinished):
                manager.get_global_instance()
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        import_graph(driver, data, database, batch_size=1, progress=interrupted,
                     source="backup.json")
    assert manager.get_global_instance() is None  # the failed import removed its marker
    import_graph(driver, data, database)
    assert manager.get_global_instance() is not None


def test_a_restore_is_named_without_raising(manager, driver, database):
    assert manager.restores.current() is None
    driver.execute_query("CREATE (:HopperRestore {started_at: datetime(), file: 'b.json'})",
                         database_=database)
    restores.forget(driver, database)
    restore = manager.restores.current()
    assert restore is not None and restore.file == "b.json"
    assert restore.rerun == "hopper-graph import b.json"
    with pytest.raises(RestoreUnfinished) as caught:
        InstanceManager(driver, database).list()
    assert "hopper-graph import b.json" in caught.value.message


# -- one restore at a time -----------------------------------------------------------------
def marker(driver, database, *, host: str, pid: int, idle: int, file: str = "a.json") -> None:
    """A restore's marker as an import writes it, its last batch ``idle`` seconds ago, and
    one node it wrote."""
    driver.execute_query(
        "CREATE (:HopperRestore {started_at: datetime(), file: $file, host: $host, pid: $pid,"
        " single: true, progress_at: datetime() - duration({seconds: $idle})}) "
        "CREATE (:HopperInstance:Restoring {id: 'restoring', name: 'half', scope: 'PROJECT'})",
        file=file, host=host, pid=pid, idle=idle, database_=database)
    restores.forget(driver, database)


def restore_nodes(driver, database) -> int:
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE n:Restoring OR n:HopperRestore RETURN count(n) AS n",
        database_=database)
    return int(records[0]["n"])


def gone_pid() -> int:
    """The pid of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.fixture
def exported(manager, driver, database) -> dict:
    make_tree(manager)
    data = export_graph(driver, database)
    wipe(driver, database)
    return data


def test_an_import_refuses_while_another_is_writing_and_removes_nothing(
        exported, driver, database):
    marker(driver, database, host=socket.gethostname(), pid=os.getpid(), idle=1)
    with pytest.raises(Conflict) as caught:
        import_graph(driver, exported, database)
    assert f"pid {os.getpid()} on {socket.gethostname()}" in caught.value.message
    assert "a.json" in caught.value.message
    assert caught.value.details["pid"] == os.getpid()
    assert restore_nodes(driver, database) == 2  # the running import's marker and node


@pytest.mark.parametrize(("host", "idle", "running"), [
    ("another-host", 5, True),  # another host's process cannot be asked: its last batch
    ("another-host", 600, False),  # ... is recent, or long ago
    (None, 5, False),  # this host, its process gone: killed
])
def test_a_killed_import_is_told_from_a_running_one(exported, driver, database, host, idle,
                                                    running):
    marker(driver, database, host=host or socket.gethostname(), pid=gone_pid(), idle=idle)
    if running:
        with pytest.raises(Conflict, match="another import is running"):
            import_graph(driver, exported, database)
        assert restore_nodes(driver, database) == 2
    else:
        result = import_graph(driver, exported, database)
        assert result.removed_unfinished == 1
        assert restore_nodes(driver, database) == 0
        assert check_invariants(driver, database) == []


def test_of_two_imports_begun_together_one_restores_and_the_other_is_refused(
        exported, driver, database):
    def restore(i, out):
        try:
            out.append(import_graph(driver, exported, database, batch_size=2).instances)
        except Conflict as exc:
            out.append(exc.message)
    for _ in range(3):
        outcomes = run_threads(2, restore)
        assert [o for o in outcomes if isinstance(o, int)] == [len(exported["instances"])]
        assert len([o for o in outcomes if isinstance(o, str)]) == 1  # the refusal
        assert check_invariants(driver, database) == []
        assert restore_nodes(driver, database) == 0
        assert export_graph(driver, database)["instances"] == exported["instances"]
        wipe(driver, database)
