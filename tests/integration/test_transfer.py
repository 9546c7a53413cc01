"""Export and import: a generated hierarchy with its history goes out, the database is
wiped, it comes back, and nothing differs (down to the stored property values)."""

from __future__ import annotations

import json
import uuid

import pytest

from hopper_graph import (
    Conflict,
    DuplicateName,
    InstanceManager,
    InstanceSpec,
    RestoreInProgress,
    ValidationError,
)
from hopper_graph.checker import check_invariants
from hopper_graph.queries import QUERIES
from hopper_graph.transfer import (
    FORMAT,
    export_graph,
    import_graph,
    read_export,
    write_export,
)
from tests.conftest import wipe
from tests.factories import make_global, make_orchestration, make_project

TRICKY_NAMES = ["yes", "null", "2024-01-01", "a: b", "[bold]x[/bold]", "- dash",
                "'; MATCH (n) DETACH DELETE n //", "tab\tand\nnewline", "ünïcødé ✓", "#hash"]


def build_history(manager: InstanceManager) -> dict[str, str]:
    """A hierarchy with every kind of history: transitions and cascades, an EPHEMERAL run
    archived by its stop, updates, a heartbeat, a deleted subtree, and an id reused after
    its instance was deleted (its old events stay unlinked from the new one)."""
    g = manager.create(name="global", scope="GLOBAL", metadata={"site": "eu", "n": 1.5},
                       actor="tester")
    manager.start(g.id, actor="tester", reason="boot")
    projects = []
    for i, name in enumerate(TRICKY_NAMES[:4]):
        p = manager.create(name=name, scope="PROJECT", parent_id=g.id, project_id=f"proj-{i}",
                           config={"limits": {"max_child_instances": 7}, "tags": [name]},
                           metadata={"deep": {"list": [1, {"x": None}], "s": "ü"}})
        projects.append(p)
    sub = manager.create(name=TRICKY_NAMES[4], scope="PROJECT", parent_id=projects[0].id,
                         project_id="sub")
    runs = [manager.create(name=name, scope="ORCHESTRATION", parent_id=projects[0].id)
            for name in TRICKY_NAMES[5:8]]
    phase = manager.create(name=TRICKY_NAMES[8], scope="ORCHESTRATION", parent_id=runs[0].id)
    for instance in (projects[0], sub, *runs, phase, projects[1]):
        manager.start(instance.id)
    manager.pause(projects[0].id, reason="maintenance")   # cascades down
    manager.resume(projects[0].id)
    manager.stop(runs[1].id)                             # EPHEMERAL: archived at once
    manager.update(projects[1].id, metadata={"owner": "ops"}, config={"tags": ["y"]})
    manager.heartbeat(projects[0].id)
    doomed = manager.create(name="doomed", scope="PROJECT", parent_id=g.id, project_id="d")
    manager.create(name="doomed-run", scope="ORCHESTRATION", parent_id=doomed.id)
    manager.start(doomed.id)
    manager.delete(doomed.id, force=True, reason="cleanup")
    reborn_id = str(uuid.uuid4())
    manager.create(id=reborn_id, name=TRICKY_NAMES[9], scope="PROJECT", parent_id=g.id,
                   project_id="r")
    manager.delete(reborn_id)
    manager.create(id=reborn_id, name=TRICKY_NAMES[9], scope="PROJECT", parent_id=g.id,
                   project_id="r")
    manager.archive(projects[3].id)
    manager.add_lien(projects[0].id, TRICKY_NAMES[6], "team: ops", actor="tester")
    manager.add_lien(phase.id, "no origin")
    return {"global": g.id, "doomed": doomed.id, "reborn": reborn_id, "phase": phase.id}


def snapshot(driver, database) -> dict:
    """Everything stored: nodes with labels and raw properties, edges, events, counter."""
    def rows(query):
        records, _, _ = driver.execute_query(query, database_=database)
        return sorted(json.dumps({**r.data(), "props": sorted(r.get("props") or [])},
                                 sort_keys=True) for r in records)

    # Each property with its exact type; a DATETIME as its string, which shows its zone.
    props = ("[k IN keys({v}) | [k, valueType({v}[k]), CASE WHEN valueType({v}[k]) STARTS "
             "WITH 'ZONED' THEN toString({v}[k]) ELSE {v}[k] END]] AS props")
    return {
        "instances": rows("MATCH (n:HopperInstance) RETURN labels(n) AS labels, "
                          + props.format(v="n")),
        "events": rows("MATCH (e:InstanceEvent) RETURN labels(e) AS labels, "
                       + props.format(v="e")),
        "parent_of": rows("MATCH (p)-[:PARENT_OF]->(c) RETURN p.id AS p, c.id AS c"),
        "has_event": rows("MATCH (n)-[:HAS_EVENT]->(e) RETURN n.id AS n, e.id AS e"),
        "counters": rows("MATCH (c:HopperCounter) RETURN c {.*} AS c"),
        "liens": rows("MATCH (n)-[:HAS_LIEN]->(l) RETURN n.id AS n, labels(l) AS labels, "
                      + props.format(v="l")),
    }


def without_time(export: dict) -> dict:
    return {k: v for k, v in export.items() if k != "exported_at"}


@pytest.fixture
def history(manager):
    return build_history(manager)


def test_round_trip_gives_back_the_same_graph(manager, driver, database, history):
    manager.repository.sequence_events()  # an export numbers what waits first
    before = snapshot(driver, database)
    first = export_graph(driver, database)
    wipe(driver, database)
    result = import_graph(driver, first, database)
    assert (result.instances, result.events) == (len(first["instances"]), len(first["events"]))
    assert without_time(export_graph(driver, database)) == without_time(first)
    assert snapshot(driver, database) == before
    assert check_invariants(driver, database) == []


def test_the_export_holds_everything(manager, driver, database, history):
    data = export_graph(driver, database)
    assert data["format"] == FORMAT and data["format_version"] == 1
    ids = [i["id"] for i in data["instances"]]
    position = {instance_id: n for n, instance_id in enumerate(ids)}
    for instance in data["instances"]:   # parents first
        if instance.get("parent_id"):
            assert position[instance["parent_id"]] < position[instance["id"]]
    assert history["doomed"] not in ids
    doomed_events = [e for e in data["events"] if e["instance_id"] == history["doomed"]]
    assert [e["event"] for e in doomed_events] == ["create", "start", "stop", "delete"]
    seqs = [e["seq"] for e in data["events"]]
    assert seqs == sorted(seqs) and data["event_seq"] == seqs[-1]
    assert len(data["unlinked_event_ids"]) == 2   # the first life of the reborn id
    g = data["instances"][0]
    assert g["metadata"] == {"site": "eu", "n": 1.5} and isinstance(g["config"], dict)
    assert g["status"] == "ACTIVE" and g["version"] == 2 and g["started_at"].endswith("Z")
    assert set(data["datetime_properties"]["instances"]) >= {"created_at", "updated_at",
                                                             "started_at", "heartbeat_at"}
    assert data["datetime_properties"]["events"] == ["at"]


def test_history_and_the_event_feed_continue_after_a_restore(manager, driver, database,
                                                            history):
    data = export_graph(driver, database)
    wipe(driver, database)
    import_graph(driver, data, database)
    restored = InstanceManager(driver, database)
    assert [e.event for e in restored.history(history["doomed"])] == [
        "create", "start", "stop", "delete"]
    assert restored.get(history["phase"]).status.value == "ACTIVE"
    created = restored.create(name="after", scope="PROJECT", parent_id=history["global"],
                              project_id="after")
    assert restored.history(created.id)[0].seq == data["event_seq"] + 1


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_files_round_trip(manager, driver, database, history, tmp_path, suffix):
    data = export_graph(driver, database)
    path = tmp_path / f"backup{suffix}"
    write_export(data, path)
    assert read_export(path) == data
    wipe(driver, database)
    import_graph(driver, read_export(path), database)
    assert without_time(export_graph(driver, database)) == without_time(data)


def test_import_refuses_a_database_that_is_not_empty(manager, driver, database, history):
    data = export_graph(driver, database)
    before = snapshot(driver, database)
    with pytest.raises(Conflict, match="empty database"):
        import_graph(driver, data, database)
    assert snapshot(driver, database) == before


def test_a_failed_import_leaves_the_database_empty(clean_graph, database, manager):
    g = make_global(manager)
    for i in range(30):
        make_project(manager, g, name=f"p{i}")
    data = export_graph(clean_graph, database)
    data["instances"][-1]["name"] = "p0"   # (name, scope) taken: the database refuses it
    wipe(clean_graph, database)
    with pytest.raises(DuplicateName):
        import_graph(clean_graph, data, database, batch_size=7)   # some batches committed
    records, _, _ = clean_graph.execute_query(
        "MATCH (n) WHERE n:HopperInstance OR n:InstanceEvent OR n:HopperCounter "
        "RETURN count(n) AS n", database_=database)
    assert records[0]["n"] == 0


def test_large_hierarchy_in_many_batches(manager, driver, database):
    g = make_global(manager, limits={"max_child_instances": 500})
    specs = [InstanceSpec(id=str(uuid.uuid4()), name=f"bulk-{i}", scope="PROJECT",
                          parent_id=g.id, project_id=f"b{i}") for i in range(400)]
    specs += [InstanceSpec(id=str(uuid.uuid4()), name=f"run-{i}", scope="ORCHESTRATION",
                           parent_id=specs[i].id) for i in range(400)]
    manager.bulk_create(specs)
    manager.repository.sequence_events()
    before = snapshot(driver, database)
    data = export_graph(driver, database)
    wipe(driver, database)
    import_graph(driver, data, database, batch_size=64)
    assert snapshot(driver, database) == before
    assert check_invariants(driver, database) == []


def test_export_refuses_edges_that_disagree_with_parent_id(manager, driver, database,
                                                          history):
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.parent_id = $g",
                         id=history["phase"], g=history["global"], database_=database)
    with pytest.raises(Conflict, match="disagree"):
        export_graph(driver, database)


def test_export_refuses_a_cycle(manager, driver, database):
    g = make_global(manager)
    p = make_project(manager, g, name="p")
    a = make_orchestration(manager, p, name="a")
    b = make_orchestration(manager, a, name="b")
    driver.execute_query(
        "MATCH (p:HopperInstance {id: $p})-[r:PARENT_OF]->(a:HopperInstance {id: $a}), "
        "(b:HopperInstance {id: $b}) DELETE r CREATE (b)-[:PARENT_OF]->(a) "
        "SET a.parent_id = b.id", p=p.id, a=a.id, b=b.id, database_=database)
    with pytest.raises(Conflict, match="cycle"):
        export_graph(driver, database)


def minimal(**changes):
    data = {
        "format": FORMAT, "format_version": 1, "event_seq": 1,
        "instances": [{"id": "g", "name": "global", "scope": "GLOBAL", "status": "CREATED",
                       "instance_type": "SINGLETON", "version": 1, "depth": 0,
                       "created_at": "2024-01-01T00:00:00Z",
                       "updated_at": "2024-01-01T00:00:00.123456789+00:00",
                       "config": {"limits": {"max_child_instances": 3, "max_depth": 5}}}],
        "events": [{"id": "e1", "seq": 1, "instance_id": "g", "event": "create",
                    "to_status": "CREATED", "at": "2024-01-01T00:00:00Z"}],
    }
    data.update(changes)
    return data


def test_a_hand_written_file_without_datetime_properties_imports(clean_graph, database):
    import_graph(clean_graph, minimal(), database)
    records, _, _ = clean_graph.execute_query(
        "MATCH (n:GlobalInstance) RETURN valueType(n.created_at) AS t, "
        "toString(n.updated_at) AS u, n.config AS c", database_=database)
    assert records[0]["t"].startswith("ZONED DATETIME")
    assert records[0]["u"] == "2024-01-01T00:00:00.123456789Z"
    assert json.loads(records[0]["c"]) == {"limits": {"max_child_instances": 3, "max_depth": 5}}
    assert check_invariants(clean_graph, database) == []


@pytest.mark.parametrize(("data", "path"), [
    ([], "$"),
    (minimal(format="other"), "format"),
    (minimal(format_version=2), "format_version"),
    (minimal(instances="no"), "instances"),
    (minimal(instances=[{"id": "x"}]), "instances[0].name"),
    (minimal(instances=[{**minimal()["instances"][0], "status": "RUNNING"}]),
     "instances[0].status"),
    (minimal(instances=[{**minimal()["instances"][0], "created_at": "2024-01-01T00:00:00"}]),
     "instances[0].created_at"),
    (minimal(instances=[{**minimal()["instances"][0], "created_at": "2024-02-30T00:00:00Z"}]),
     "instances[0].created_at"),
    (minimal(instances=[{**minimal()["instances"][0], "parent_id": "later"}]),
     "instances[0].parent_id"),
    (minimal(instances=[{**minimal()["instances"][0], "nested": {"a": 1}}]),
     "instances[0].nested"),
    (minimal(instances=minimal()["instances"] * 2), "instances[1].id"),
    (minimal(events=[{"id": "e", "seq": "one", "instance_id": "g", "event": "create",
                      "at": "2024-01-01T00:00:00Z"}]), "events[0].seq"),
    (minimal(events=minimal()["events"] * 2), "events[1].seq"),
    (minimal(event_seq=-1), "event_seq"),
    (minimal(instances=[{**minimal()["instances"][0], "name": "caf\u00e9"},
                        {**minimal()["instances"][0], "id": "g2", "name": "cafe\u0301"}]),
     "instances[1].name"),
    (minimal(liens=[{"id": "l", "instance_id": "nobody", "reason": "x",
                     "created_at": "2024-01-01T00:00:00Z"}]), "liens[0].instance_id"),
    (minimal(liens=[{"id": "l", "instance_id": "g", "created_at": "2024-01-01T00:00:00Z"}]),
     "liens[0].reason"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_invalid_files_are_refused_with_the_field_named(clean_graph, database, data, path):
    with pytest.raises(ValidationError) as caught:
        import_graph(clean_graph, data, database)
    assert path in caught.value.errors
    records, _, _ = clean_graph.execute_query("MATCH (n:HopperInstance) RETURN count(n) AS n",
                                              database_=database)
    assert records[0]["n"] == 0


def test_an_interrupted_import_is_removed_by_the_next_and_refuses_live_writes(
        manager, driver, database, history):
    data = export_graph(driver, database)
    wipe(driver, database)
    some = data["instances"][:2]
    # what a process killed mid-import leaves: its marker and a batch of marked nodes
    driver.execute_query("CREATE (:HopperRestore {started_at: datetime()})",
                         database_=database)
    driver.execute_query(QUERIES.import_instances.text, rows=[
        {k: v for k, v in row.items() if not isinstance(v, dict)} for row in some],
        datetime_keys=[], database_=database)
    with pytest.raises(RestoreInProgress):
        manager.create(name="live", scope="PROJECT", parent_id=some[0]["id"],
                       project_id="live")
    with pytest.raises(RestoreInProgress):
        manager.start(some[0]["id"])
    result = import_graph(driver, data, database)
    assert result.removed_unfinished == 2
    assert result.instances == len(data["instances"])
    assert check_invariants(driver, database) == []
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE n:Restoring OR n:HopperRestore RETURN count(n) AS n",
        database_=database)
    assert records[0]["n"] == 0
