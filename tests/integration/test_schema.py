"""The versioned schema against a real Neo4j: apply_schema is idempotent, SHOW CONSTRAINTS and
SHOW INDEXES list exactly what schema.MIGRATIONS declares, and each applied migration is
recorded as a (:SchemaMigration {version, name, applied_at}) node."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from neo4j import RoutingControl
from neo4j.exceptions import ConstraintError

from hopper_graph.schema import MIGRATIONS, apply_schema, schema_version
from tests.unit.test_schema import declared_schema


def show(driver, database, what: str) -> dict[str, dict]:
    records, _, _ = driver.execute_query(f"SHOW {what} YIELD *", database_=database,
                                         routing_=RoutingControl.READ)
    return {r["name"]: r.data() for r in records}


def migration_records(driver, database) -> list[dict]:
    records, _, _ = driver.execute_query(
        "MATCH (m:SchemaMigration) RETURN m {.*} AS m ORDER BY m.version",
        database_=database, routing_=RoutingControl.READ)
    return [r["m"] for r in records]


def snapshot(driver, database) -> tuple:
    constraints = show(driver, database, "CONSTRAINTS")
    indexes = show(driver, database, "INDEXES")
    return ({n: (c["id"], c["type"], c["labelsOrTypes"], c["properties"])
             for n, c in constraints.items()},
            {n: (i["id"], i["type"], i["labelsOrTypes"], i["properties"])
             for n, i in indexes.items()})


def test_apply_schema_twice_applies_nothing_the_second_time(driver, database):
    apply_schema(driver, database)  # the session fixture has usually done this already
    before = snapshot(driver, database)
    records_before = migration_records(driver, database)

    assert apply_schema(driver, database) == []
    assert apply_schema(driver, database) == []

    assert snapshot(driver, database) == before
    assert migration_records(driver, database) == records_before


def test_a_database_without_records_gets_every_migration_once(driver, database):
    """Where the record is lost (or the constraints came from elsewhere), every statement is
    applied again without error, nothing is duplicated, and the record is rebuilt."""
    before = snapshot(driver, database)
    try:
        driver.execute_query("MATCH (m:SchemaMigration) DELETE m", database_=database)
        assert schema_version(driver, database) == 0

        applied = apply_schema(driver, database)
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
        assert apply_schema(driver, database) == []
    finally:
        apply_schema(driver, database)
    assert snapshot(driver, database) == before
    assert [r["version"] for r in migration_records(driver, database)] == [
        m.version for m in MIGRATIONS]


def test_show_constraints_lists_every_declared_constraint(driver, database):
    constraints = show(driver, database, "CONSTRAINTS")
    wanted = [d for d in declared_schema().values() if d.kind == "CONSTRAINT"]
    assert wanted
    for d in wanted:
        assert d.name in constraints, f"constraint {d.name} is missing"
        found = constraints[d.name]
        assert found["type"] in ("UNIQUENESS", "NODE_PROPERTY_UNIQUENESS"), found
        assert found["entityType"] == "NODE"
        assert found["labelsOrTypes"] == [d.label], d.name
        assert found["properties"] == list(d.properties), d.name


def test_the_product_rules_have_their_constraints(driver, database):
    """Unique id, unique (name, scope), at most one GLOBAL: enforced by the database."""
    by_shape = {(tuple(c["labelsOrTypes"]), tuple(c["properties"])): c["type"]
                for c in show(driver, database, "CONSTRAINTS").values()}
    assert (("HopperInstance",), ("id",)) in by_shape
    assert (("HopperInstance",), ("name", "scope")) in by_shape
    assert (("GlobalInstance",), ("scope",)) in by_shape
    assert (("InstanceEvent",), ("id",)) in by_shape


def test_community_has_no_existence_or_key_constraints_so_none_are_declared(driver, database):
    types = {c["type"] for c in show(driver, database, "CONSTRAINTS").values()}
    assert not {t for t in types if "EXISTENCE" in t or "KEY" in t}
    assert all(d.unique for d in declared_schema().values() if d.kind == "CONSTRAINT")


def test_show_indexes_lists_every_declared_index_online(driver, database):
    driver.execute_query("CALL db.awaitIndexes(120)", database_=database)
    indexes = show(driver, database, "INDEXES")
    wanted = list(declared_schema().values())
    for d in wanted:
        assert d.name in indexes, f"index {d.name} is missing"
        found = indexes[d.name]
        assert found["state"] == "ONLINE", found
        assert found["labelsOrTypes"] == [d.label], d.name
        assert found["properties"] == list(d.properties), d.name
        assert found["type"] == d.index_type, d.name
        if d.kind == "CONSTRAINT":
            assert found["owningConstraint"] == d.name  # the constraint's backing index
        else:
            assert found["owningConstraint"] is None


def test_the_lookups_the_queries_need_are_indexed(driver, database):
    shapes = {(tuple(i["labelsOrTypes"] or ()), tuple(i["properties"] or ()))
              for i in show(driver, database, "INDEXES").values()}
    for label, properties in [
        ("HopperInstance", ("scope",)), ("HopperInstance", ("status",)),
        ("HopperInstance", ("scope", "status")),
    ]:
        assert ((label,), properties) in shapes, (label, properties)
    # project_id and the children paging by parent_id lead a composite index each.
    leading = {(labels, props[0]) for labels, props in shapes if props}
    assert (("HopperInstance",), "project_id") in leading
    assert (("HopperInstance",), "parent_id") in leading


def test_each_applied_migration_is_recorded(driver, database):
    records = migration_records(driver, database)
    assert [r["version"] for r in records] == [m.version for m in MIGRATIONS]
    now = datetime.now(UTC)
    for record, migration in zip(records, MIGRATIONS, strict=True):
        assert record["name"] == migration.name
        applied_at = record["applied_at"].to_native()
        assert applied_at.utcoffset() == timedelta(0)
        assert applied_at <= now + timedelta(seconds=5)
        assert set(record) == {"version", "name", "applied_at"}


def test_schema_version_is_the_latest_migration(driver, database):
    assert schema_version(driver, database) == MIGRATIONS[-1].version


def test_a_migration_cannot_be_recorded_twice(driver, database):
    with pytest.raises(ConstraintError):
        driver.execute_query("CREATE (:SchemaMigration {version: 1, name: 'again'})",
                             database_=database)


def test_migration_3_labels_the_top_level_projects_that_existed_before_it(clean_graph,
                                                                          database):
    """A graph from before migration 3: its top-level PROJECT gets :ProjectInstance (so the
    constraint covers it), its sub-project, which shares the project_id, does not."""
    driver = clean_graph
    driver.execute_query(
        "CREATE (:HopperInstance:GlobalInstance {id: 'g', name: 'g', scope: 'GLOBAL'})"
        "-[:PARENT_OF]->(:HopperInstance {id: 'p', name: 'p', scope: 'PROJECT', "
        "project_id: 'alpha'})-[:PARENT_OF]->(:HopperInstance {id: 'sub', name: 'sub', "
        "scope: 'PROJECT', project_id: 'alpha'})", database_=database)
    later = [m.version for m in MIGRATIONS if m.version >= 3]
    try:  # back to the schema before migration 3
        driver.execute_query("MATCH (m:SchemaMigration) WHERE m.version >= 3 DELETE m",
                             database_=database)
        driver.execute_query("DROP CONSTRAINT hopper_top_project IF EXISTS",
                             database_=database)
        assert [m.version for m in apply_schema(driver, database)] == later
    finally:
        apply_schema(driver, database)
    # Since migration 7 the constraint is on TopProject, and every PROJECT is a
    # ProjectInstance (tests/integration/test_scope_labels.py).
    records, _, _ = driver.execute_query(
        "MATCH (n:TopProject) RETURN collect(n.id) AS ids", database_=database,
        routing_=RoutingControl.READ)
    assert records[0]["ids"] == ["p"]
    with pytest.raises(ConstraintError):
        driver.execute_query("CREATE (:HopperInstance:TopProject {id: 'p2', name: 'p2', "
                             "scope: 'PROJECT', project_id: 'alpha'})", database_=database)


def test_a_migration_missing_below_the_latest_recorded_is_still_applied(driver, database):
    """Branches merge migrations in any order: a graph that recorded a later one first
    still gets the earlier one."""
    earlier = MIGRATIONS[-2]
    try:
        driver.execute_query("MATCH (m:SchemaMigration {version: $v}) DELETE m",
                             v=earlier.version, database_=database)
        assert schema_version(driver, database) == MIGRATIONS[-1].version
        assert apply_schema(driver, database) == [earlier]
    finally:
        apply_schema(driver, database)
    assert [r["version"] for r in migration_records(driver, database)] == [
        m.version for m in MIGRATIONS]
