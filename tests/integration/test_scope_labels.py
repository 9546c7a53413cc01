"""A label per scope: every instance carries GlobalInstance, ProjectInstance or
OrchestrationInstance beside HopperInstance (Neo4j Browser colours nodes by label), and the
top-level PROJECTs TopProject, whose constraint keeps one PROJECT per project_id. Schema
migration 7 labels a graph written before them; create, bulk create and import label what
they write."""

from __future__ import annotations

import pytest
from neo4j import RoutingControl
from neo4j.exceptions import ConstraintError

from hopper_graph import InstanceSpec
from hopper_graph.errors import DuplicateProject
from hopper_graph.schema import LABEL_BATCH, MIGRATIONS, apply_schema
from hopper_graph.transfer import export_graph, import_graph
from tests.conftest import wipe
from tests.factories import make_global, make_orchestration, make_project

SCOPE_LABELS = ("GlobalInstance", "ProjectInstance", "OrchestrationInstance", "TopProject")


def labelled(driver, database) -> dict[str, list[str]]:
    """The names of the instances carrying each scope label."""
    records, _, _ = driver.execute_query(
        "UNWIND $labels AS label "
        "OPTIONAL MATCH (n:HopperInstance) WHERE label IN labels(n) "
        "WITH label, n ORDER BY n.name "
        "RETURN label, collect(n.name) AS names",
        labels=list(SCOPE_LABELS), database_=database, routing_=RoutingControl.READ)
    return {r["label"]: r["names"] for r in records}


EXPECTED = {"GlobalInstance": ["g"], "ProjectInstance": ["sub", "web"],
            "OrchestrationInstance": ["phase", "run"], "TopProject": ["web"]}


def test_migration_7_labels_a_graph_written_before_it(clean_graph, database):
    """A graph as migration 3 left it: GlobalInstance on the root, ProjectInstance on the
    top-level PROJECT only (its constraint), no label on the rest."""
    driver = clean_graph
    driver.execute_query(
        "CREATE (g:HopperInstance:GlobalInstance {id: 'g', name: 'g', scope: 'GLOBAL'})"
        "-[:PARENT_OF]->(p:HopperInstance:ProjectInstance {id: 'web', name: 'web', "
        "scope: 'PROJECT', project_id: 'web'}), "
        "(p)-[:PARENT_OF]->(:HopperInstance {id: 'sub', name: 'sub', scope: 'PROJECT', "
        "project_id: 'web'}), "
        "(p)-[:PARENT_OF]->(:HopperInstance {id: 'run', name: 'run', "
        "scope: 'ORCHESTRATION', project_id: 'web'})"
        "-[:PARENT_OF]->(:HopperInstance {id: 'phase', name: 'phase', "
        "scope: 'ORCHESTRATION', project_id: 'web'})", database_=database)
    try:  # back to the schema before migration 7
        driver.execute_query("MATCH (m:SchemaMigration {version: 7}) DELETE m",
                             database_=database)
        driver.execute_query("DROP CONSTRAINT hopper_top_project IF EXISTS",
                             database_=database)
        driver.execute_query("CREATE CONSTRAINT hopper_single_project IF NOT EXISTS "
                             "FOR (n:ProjectInstance) REQUIRE n.project_id IS UNIQUE",
                             database_=database)
        assert [m.version for m in apply_schema(driver, database)] == [7]
    finally:
        apply_schema(driver, database)
    assert labelled(driver, database) == EXPECTED
    constraints, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name, labelsOrTypes",
                                             database_=database)
    by_name = {r["name"]: r["labelsOrTypes"] for r in constraints}
    assert by_name.get("hopper_top_project") == ["TopProject"]
    assert "hopper_single_project" not in by_name
    with pytest.raises(ConstraintError):
        driver.execute_query("CREATE (:HopperInstance:ProjectInstance:TopProject {id: 'p2', "
                             "name: 'p2', scope: 'PROJECT', project_id: 'web'})",
                             database_=database)


def test_running_migration_7_again_changes_nothing(clean_graph, database):
    migration = next(m for m in MIGRATIONS if m.version == 7)
    clean_graph.execute_query(
        "CREATE (:HopperInstance:ProjectInstance {id: 'x', name: 'x', scope: 'PROJECT', "
        "project_id: 'x'})", database_=database)
    for statement in (*migration.data, *migration.after):
        with clean_graph.session(database=database) as session:
            session.run(statement).consume()
    assert labelled(clean_graph, database)["ProjectInstance"] == ["x"]
    assert labelled(clean_graph, database)["TopProject"] == []  # no GLOBAL above it


def test_migration_7_labels_in_batches_until_none_is_left(clean_graph, database):
    """Each relabelling statement commits every LABEL_BATCH nodes; with batches of 2, five
    ORCHESTRATIONs take three transactions and all end up labelled."""
    migration = next(m for m in MIGRATIONS if m.version == 7)
    clean_graph.execute_query(
        "UNWIND range(1, 5) AS i CREATE (:HopperInstance {id: 'o' + i, name: 'o' + i, "
        "scope: 'ORCHESTRATION'})", database_=database)
    statement = next(s for s in migration.after if "OrchestrationInstance" in s)
    assert f"OF {LABEL_BATCH} ROWS" in statement
    with clean_graph.session(database=database) as session:
        summary = session.run(statement.replace(f"OF {LABEL_BATCH} ROWS", "OF 2 ROWS")).consume()
    assert summary.counters.labels_added == 5
    assert labelled(clean_graph, database)["OrchestrationInstance"] == [
        "o1", "o2", "o3", "o4", "o5"]


def make_labelled_tree(manager) -> None:
    """GLOBAL g -> PROJECT web -> sub-PROJECT sub and run -> phase: every scope label."""
    g = make_global(manager, name="g")
    web = make_project(manager, g, name="web")
    make_project(manager, web, name="sub", project_id="web")
    run = make_orchestration(manager, web, name="run")
    make_orchestration(manager, run, name="phase")


def test_created_instances_carry_their_scope_label(manager, driver, database):
    make_labelled_tree(manager)
    assert labelled(driver, database) == EXPECTED


def test_bulk_created_instances_carry_their_scope_label(manager, driver, database):
    g = make_global(manager, name="g")
    specs = [InstanceSpec(id="00000000-0000-4000-8000-000000000001", name="web",
                          scope="PROJECT", parent_id=g.id, project_id="web")]
    specs += [InstanceSpec(id="00000000-0000-4000-8000-000000000002", name="sub",
                           scope="PROJECT", parent_id=specs[0].id, project_id="web"),
              InstanceSpec(id="00000000-0000-4000-8000-000000000003", name="run",
                           scope="ORCHESTRATION", parent_id=specs[0].id)]
    specs.append(InstanceSpec(name="phase", scope="ORCHESTRATION", parent_id=specs[2].id))
    manager.bulk_create(specs)
    assert labelled(driver, database) == EXPECTED


def test_imported_instances_carry_their_scope_label(manager, driver, database):
    make_labelled_tree(manager)
    data = export_graph(driver, database)
    wipe(driver, database)
    import_graph(driver, data, database)
    assert labelled(driver, database) == EXPECTED


def test_one_top_level_project_per_project_id_still_holds(manager):
    """The rule moved from ProjectInstance to TopProject: a sub-project shares its
    project's id, a second top-level PROJECT for it is refused."""
    make_labelled_tree(manager)
    g = manager.get_global_instance()
    with pytest.raises(DuplicateProject):
        manager.create(name="web-again", scope="PROJECT", parent_id=g.id, project_id="web")
