"""Constraints and indexes, applied idempotently and recorded as numbered migrations.

Each migration is a list of schema statements (all ``IF NOT EXISTS`` or ``IF EXISTS``).
``apply_schema`` runs those not yet recorded as ``(:SchemaMigration {version, name,
applied_at})`` nodes, so an upgrade applies only what is new, and running it twice changes
nothing.

Data statements run as auto-commit transactions, so one that touches every instance
batches itself (``CALL (n) { ... } IN TRANSACTIONS``) instead of holding a large graph's
changes in one transaction.

Community Edition enforces uniqueness (single and composite) but not property existence,
so the library validates required properties itself before every write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from neo4j import Driver, RoutingControl

INDEX_WAIT_SECONDS = 600
"""How long apply_schema waits for new indexes to come online (a large graph's take long)."""
LABEL_BATCH = 10_000
"""Nodes a migration relabels per transaction."""
LABEL_TOP_PROJECTS = (
    "MATCH (:GlobalInstance)-[:PARENT_OF]->(n:HopperInstance {scope: 'PROJECT'}) "
    "WHERE NOT n:TopProject "
    f"CALL (n) {{ SET n:TopProject }} IN TRANSACTIONS OF {LABEL_BATCH} ROWS")
"""Gives the top-level PROJECTs the label of their uniqueness constraint."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    """Schema statements, each ``IF NOT EXISTS`` or ``IF EXISTS``."""
    data: tuple[str, ...] = ()
    """Data statements run before them (each safe to run twice), e.g. labels a new
    constraint needs on what exists."""
    after: tuple[str, ...] = ()
    """Data statements run after them (each safe to run twice), e.g. labels a dropped
    constraint forbade."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "instance graph: identity, uniqueness, one GLOBAL, lookups", (
        "CREATE CONSTRAINT schema_migration_version IF NOT EXISTS "
        "FOR (m:SchemaMigration) REQUIRE m.version IS UNIQUE",
        "CREATE CONSTRAINT hopper_instance_id IF NOT EXISTS "
        "FOR (n:HopperInstance) REQUIRE n.id IS UNIQUE",
        "CREATE CONSTRAINT hopper_instance_name_scope IF NOT EXISTS "
        "FOR (n:HopperInstance) REQUIRE (n.name, n.scope) IS UNIQUE",
        # Every GLOBAL node also carries :GlobalInstance, and all of them share scope
        # 'GLOBAL': uniqueness of scope within that label means at most one GLOBAL.
        "CREATE CONSTRAINT hopper_single_global IF NOT EXISTS "
        "FOR (n:GlobalInstance) REQUIRE n.scope IS UNIQUE",
        "CREATE CONSTRAINT instance_event_id IF NOT EXISTS "
        "FOR (e:InstanceEvent) REQUIRE e.id IS UNIQUE",
        "CREATE CONSTRAINT instance_event_seq IF NOT EXISTS "
        "FOR (e:InstanceEvent) REQUIRE e.seq IS UNIQUE",
        "CREATE CONSTRAINT hopper_counter_name IF NOT EXISTS "
        "FOR (c:HopperCounter) REQUIRE c.name IS UNIQUE",
        "CREATE INDEX hopper_instance_scope IF NOT EXISTS FOR (n:HopperInstance) ON (n.scope)",
        "CREATE INDEX hopper_instance_status IF NOT EXISTS FOR (n:HopperInstance) ON (n.status)",
        "CREATE INDEX hopper_instance_scope_status IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.scope, n.status)",
        "CREATE INDEX hopper_instance_project IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.project_id, n.scope)",
        "CREATE INDEX hopper_instance_parent IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.parent_id, n.created_at)",
        "CREATE INDEX hopper_instance_created IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.created_at)",
        "CREATE INDEX instance_event_instance IF NOT EXISTS "
        "FOR (e:InstanceEvent) ON (e.instance_id, e.seq)",
    )),
    Migration(2, "children in creation order from the index alone", (
        # A page of children sorts by (created_at, id): with id in the index too, the sort
        # reads no node (a first page of 2,000 children: 11 ms -> 4 ms).
        "CREATE INDEX hopper_instance_children IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.parent_id, n.created_at, n.id)",
        "DROP INDEX hopper_instance_parent IF EXISTS",
    )),
    Migration(3, "one PROJECT per project_id; events waiting for their seq", (
        # A top-level PROJECT carries :TopProject, whose project_id is unique: one PROJECT
        # per project, however creates race. (Sub-projects share their project's id and
        # do not carry it.) Fails, and stays unapplied, while duplicates exist.
        # Until migration 7 this was hopper_single_project on :ProjectInstance, which now
        # every PROJECT carries; it is written as it is now so that applying every
        # migration again (a lost record) never brings the old constraint back.
        "CREATE CONSTRAINT hopper_top_project IF NOT EXISTS "
        "FOR (n:TopProject) REQUIRE n.project_id IS UNIQUE",
        # A history finds its instance's events that still wait for a seq (audit.py).
        "CREATE INDEX instance_event_pending IF NOT EXISTS "
        "FOR (e:PendingEvent) ON (e.instance_id)",
    ), data=(LABEL_TOP_PROJECTS,)),
    Migration(4, "purge candidates in archive order from the index", (
        # find_purge_candidates seeks the ARCHIVED EPHEMERALs after a cursor and takes
        # them in archived_at order from the index: a page costs the page, where reading
        # every archived instance to sort them grew with the archive.
        "CREATE INDEX hopper_instance_archived IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.instance_type, n.archived_at)",
    )),
    Migration(5, "list pages in creation order from an index for each filter", (
        # A list page seeks the index of its most selective filter and reads it in page
        # order (created_at, id), stopping at the page's last row: the cost of a page
        # follows the page, not the graph (cypher/instances.cypher, list_by_*).
        "CREATE INDEX hopper_instance_scope_status_created IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.scope, n.status, n.created_at, n.id)",
        "CREATE INDEX hopper_instance_scope_created IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.scope, n.created_at, n.id)",
        "CREATE INDEX hopper_instance_status_created IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.status, n.created_at, n.id)",
        "CREATE INDEX hopper_instance_project_created IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.project_id, n.scope, n.created_at, n.id)",
        "CREATE INDEX hopper_instance_created_id IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.created_at, n.id)",
    )),
    Migration(6, "a create's checks of its parent's children from the index", (
        # A create counts its parent's children that are not ARCHIVED and looks for a
        # same-scope sibling (the SINGLETON rule) by index seeks, instead of reading every
        # child: filling a wide parent was quadratic (cypher/fragments.cypher).
        "CREATE INDEX hopper_instance_parent_status IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.parent_id, n.status)",
        "CREATE INDEX hopper_instance_parent_scope_type IF NOT EXISTS "
        "FOR (n:HopperInstance) ON (n.parent_id, n.scope, n.instance_type)",
    )),
    Migration(7, "a label per scope; one PROJECT per project_id on :TopProject", (
        # :ProjectInstance now marks every PROJECT, sub-projects too (Neo4j Browser colours
        # nodes by label), and sub-projects share their project's id: the one-PROJECT-per-
        # project rule moves to :TopProject, which only top-level PROJECTs carry (a graph
        # migrated before has it on :ProjectInstance, as hopper_single_project).
        "CREATE CONSTRAINT hopper_top_project IF NOT EXISTS "
        "FOR (n:TopProject) REQUIRE n.project_id IS UNIQUE",
        "DROP CONSTRAINT hopper_single_project IF EXISTS",
    ), data=(LABEL_TOP_PROJECTS,), after=(
        "MATCH (n:HopperInstance {scope: 'PROJECT'}) WHERE NOT n:ProjectInstance "
        f"CALL (n) {{ SET n:ProjectInstance }} IN TRANSACTIONS OF {LABEL_BATCH} ROWS",
        "MATCH (n:HopperInstance {scope: 'ORCHESTRATION'}) WHERE NOT n:OrchestrationInstance "
        f"CALL (n) {{ SET n:OrchestrationInstance }} IN TRANSACTIONS OF {LABEL_BATCH} ROWS",
    )),
    Migration(8, "labels: shared label nodes, and a label's instances in page order", (
        # An instance's labels are kept as JSON text (n.labels, for reading) and as edges
        # (n)-[:LABELED {key, value, created_at, id}]->(:Label {key, value}) for selecting:
        # one Label node per pair, and a relationship index that gives the instances of
        # one pair in creation order, so a selector page costs the page
        # (cypher/instances.cypher, list_by_label).
        "CREATE CONSTRAINT label_key_value IF NOT EXISTS "
        "FOR (l:Label) REQUIRE (l.key, l.value) IS UNIQUE",
        "CREATE INDEX labeled_pair_created IF NOT EXISTS "
        "FOR ()-[r:LABELED]-() ON (r.key, r.value, r.created_at, r.id)",
    ), after=(
        "MATCH (n:HopperInstance) WHERE n.labels IS NULL "
        f"CALL (n) {{ SET n.labels = '{{}}' }} IN TRANSACTIONS OF {LABEL_BATCH} ROWS",
    )),
    Migration(9, "scoped API tokens, found by id", (
        # A request's token is looked up by the id its secret carries (hopper_graph/
        # tokens.py): one seek of this constraint's index.
        "CREATE CONSTRAINT hopper_token_id IF NOT EXISTS "
        "FOR (t:HopperToken) REQUIRE t.id IS UNIQUE",
    )),
    Migration(10, "liens: one id each", (
        # A lien hangs off its instance ((:HopperInstance)-[:HAS_LIEN]->(:Lien)) and is
        # found through it; its id is unique, as every id here is (hopper_graph/liens.py).
        "CREATE CONSTRAINT lien_id IF NOT EXISTS FOR (l:Lien) REQUIRE l.id IS UNIQUE",
    )),
    Migration(11, "one restore at a time", (
        # An import's marker ((:HopperRestore), hopper_graph/restores.py) carries single:
        # true, so of two imports that begin together only one writes its marker; the
        # other is refused before it writes anything (hopper_graph/transfer.py).
        "CREATE CONSTRAINT hopper_restore_single IF NOT EXISTS "
        "FOR (m:HopperRestore) REQUIRE m.single IS UNIQUE",
    )),
)


def schema_version(driver: Driver, database: str | None = None) -> int:
    """The highest migration recorded in the graph, 0 for an empty database."""
    records, _, _ = driver.execute_query(
        "MATCH (m:SchemaMigration) RETURN max(m.version) AS version",
        database_=database, routing_=RoutingControl.READ,
    )
    return records[0]["version"] or 0


def apply_schema(driver: Driver, database: str | None = None) -> list[Migration]:
    """Apply every migration not yet recorded; returns those applied now. Each is looked
    up by its own version, not by the highest recorded: migrations written on branches
    merge in any order, and a graph that got 5 first still gets 4."""
    records, _, _ = driver.execute_query(
        "MATCH (m:SchemaMigration) RETURN collect(m.version) AS versions",
        database_=database, routing_=RoutingControl.READ)
    recorded = set(records[0]["versions"])
    applied = []
    for migration in MIGRATIONS:
        if migration.version in recorded:
            continue
        for statement in migration.data:
            _run_data(driver, database, statement)
        for statement in migration.statements:
            # Schema statements cannot share a transaction with writes: one each.
            driver.execute_query(statement, database_=database)
        for statement in migration.after:
            _run_data(driver, database, statement)
        driver.execute_query(
            "MERGE (m:SchemaMigration {version: $version}) "
            "ON CREATE SET m.name = $name, m.applied_at = $now",
            version=migration.version, name=migration.name, now=datetime.now(UTC),
            database_=database,
        )
        applied.append(migration)
    if applied:
        # New indexes populate in the background; a query that names one (USING INDEX)
        # fails until it is online, so the schema is ready only once they all are.
        driver.execute_query("CALL db.awaitIndexes($seconds)", seconds=INDEX_WAIT_SECONDS,
                             database_=database)
    return applied


def _run_data(driver: Driver, database: str | None, statement: str) -> None:
    """One data statement in an auto-commit transaction: the only kind in which ``CALL
    ... IN TRANSACTIONS`` may batch it."""
    with driver.session(database=database) as session:
        session.run(statement).consume()
