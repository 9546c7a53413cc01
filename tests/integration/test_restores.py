"""The restore guard of the manager's Graph: asked once per TTL, not once per read, and an
import in this process is seen at once (the SIGKILL faults are in tests/reliability)."""

from __future__ import annotations

import pytest

from hopper_graph import InstanceManager, RestoreUnfinished, restores
from hopper_graph.transfer import export_graph, import_graph
from tests.conftest import wipe
from tests.factories import make_tree


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
