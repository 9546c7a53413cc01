"""``python -m bench [--quick | --smoke] [--out FILE]``: build the hierarchies, measure, report.

Uses ``HOPPER_NEO4J_URI`` when set, else starts the project's local Neo4j instance
``bench`` (Bolt 7700) so a developer's and the tests' graphs are left alone. The graph of
that database is wiped between phases. Every read of the chain, forest and wide phases
and every workload of the write phase also runs on a PostgreSQL peer (``bench/postgres``)
holding the same hierarchy, in a throwaway cluster of its own, started on first use and
removed at the end; where PostgreSQL cannot run, it says why and runs without. The scale
phase (``--only scale``, not in the default run) times the same reads and writes at 10,000
and at 1,000,000 instances, without a peer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from neo4j import Driver, RoutingControl

from bench import datasets, postgres
from bench.floor import Floor
from bench.measure import Result, concurrent, once, peak_rss_mb, timed
from bench.postgres import reads as sql
from bench.postgres import writes as pg
from bench.server import bench_uri, local_bench_server
from hopper_graph import (
    InstanceManager,
    InstanceSpec,
    InstanceStatus,
    Neo4jSettings,
    apply_schema,
    connect,
    cursors,
)
from hopper_graph.cli.server import DEFAULT_THREADS
from hopper_graph.local_neo4j import default_cache_dir
from hopper_graph.machine import TRANSITIONS
from hopper_graph.models import Page

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sizes:
    chain: int  # depth of the leaf
    forest: int  # instances, the GLOBAL included
    projects: int
    wide: int  # children of the one parent
    http_seconds: float  # how long each HTTP load runs
    cascade: int  # running instances below the PROJECT the write phase stops
    bulk: int  # instances the write phase imports online, the GLOBAL included
    writers_seconds: float  # how long each concurrent-writers run lasts
    scale_small: int  # instances the scale phase times first, the GLOBAL included
    scale_large: int  # ... and again after growing the same graph to this many
    settle_seconds: float = 0.0  # the pause after the scale phase grows its graph
    move: int = 1000  # instances in the subtree the move phase moves (its root included)
    labelled: int = 20_000  # runs the labels phase labels (every one carries labels)


FULL = Sizes(chain=5000, forest=100_000, projects=1000, wide=10_000, http_seconds=10.0,
             cascade=10_000, bulk=20_000, writers_seconds=10.0, scale_small=10_000,
             scale_large=1_000_000, settle_seconds=60.0)
QUICK = Sizes(chain=1000, forest=20_000, projects=200, wide=2000, http_seconds=10.0,
              cascade=2000, bulk=5000, writers_seconds=5.0, scale_small=10_000,
              scale_large=100_000, settle_seconds=15.0)
SMOKE = Sizes(chain=50, forest=600, projects=10, wide=120, http_seconds=1.0,
              cascade=120, bulk=300, writers_seconds=0.5, scale_small=200, scale_large=2000,
              move=60, labelled=600)
"""Every phase in seconds: what the test suite runs to keep the benchmark working."""

LEAN_FIELDS = ("name", "status", "parent_id")
"""The fields a tree view asks for (id comes always): the lean tree's four."""

WRITERS = 8
"""Concurrent writers, each on its own PROJECT."""

FIRST_PAGE: dict[str, Any] = {"after": cursors.FIRST}
"""How our side asks for the first page of a paged read (a filtered list, a history, a
descendants page, children): by cursor, as the peer reads every page by keyset. By cursor
a page has no total (counting would cost every match), so it costs the page alone."""

WALK = 1000
"""Rows per page when walking by cursor to a deep page's position, outside the timing."""

HISTORY_EVENTS = 120
MOVES = 10
"""Moves the move phase times on each side (after two unmeasured ones)."""
"""Audit events of the instance whose history page is read, on both sides: its create,
its start, then pauses and resumes (a page of 100 is full)."""

CYCLE = (("start", "CREATED"), ("pause", "ACTIVE"), ("resume", "PAUSED"), ("stop", "ACTIVE"))
"""The single transitions timed, in order, each with the status it expects."""


class Bench:
    def __init__(self, driver: Driver, database: str | None, sizes: Sizes = FULL) -> None:
        self.driver = driver
        self.database = database
        self.sizes = sizes
        self.results: list[Result] = []
        self.manager = InstanceManager(driver, database)
        self.peer_version: str | None = None
        self.peer_skipped: str | None = None
        self._peer: postgres.Peer | None = None
        self.floor = Floor(driver, database)
        self.fleet_threads: list[int] = [DEFAULT_THREADS]
        """gunicorn threads per worker the fleet phase serves with, one load each."""
        self._closing = ExitStack()

    def add(self, result: Result, floor: Result | None = None,
            peer: Result | None = None) -> Result:
        result.floor = floor
        result.peer = peer
        self.results.append(result)
        print(_row(result), flush=True)
        return result

    def peer(self) -> postgres.Peer | None:
        """The PostgreSQL peer, started on first use and removed by ``close``; None (said
        once, with the reason) where PostgreSQL cannot run here."""
        if self._peer is None and self.peer_skipped is None:
            try:
                self._peer = self._closing.enter_context(postgres.Peer.start())
                self.peer_version = self._peer.version
            except postgres.PostgresUnavailable as error:
                self.peer_skipped = str(error)
                print(f"PostgreSQL peer skipped: {error}\n"
                      "  Every workload still runs; none has a peer figure.", flush=True)
        return self._peer

    def close(self) -> None:
        self._closing.close()

    def _peer_load(self, global_id: str, global_config: dict[str, Any],
                   specs: list[InstanceSpec]) -> postgres.Peer | None:
        """Load the phase's hierarchy into the peer (COPY of the same specs as ours, the
        GLOBAL included, one create event each), or None without a peer."""
        peer = self.peer()
        if peer is None:
            return None
        peer.reset()
        peer.copy([datasets.plain_global(global_id, global_config),
                   *datasets.plain_rows(specs, global_id)])
        peer.analyze()
        return peer

    def _peer_read(self, name: str, read: Callable[[Any], Any], repeat: int,
                   warmup: int = 2) -> Result | None:
        """``read`` of the peer's connection timed as ours is, or None without a peer."""
        peer = self.peer()
        if peer is None:
            return None
        conn = peer.conn
        return timed(f"peer: {name}", lambda: read(conn), repeat=repeat, warmup=warmup)

    def bare(self, query: str, **params: Any) -> Callable[[], list[Any]]:
        """The floor: the same rows through the bare driver and the simplest Cypher."""
        def run() -> list[Any]:
            records, _, _ = self.driver.execute_query(
                query, params, database_=self.database, routing_=RoutingControl.READ)
            return records
        return run

    def wipe(self) -> None:
        with self.driver.session(database=self.database) as session:
            session.run("MATCH (n) WHERE n:HopperInstance OR n:InstanceEvent OR n:HopperCounter "
                        "OR n:Label "
                        "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()

    # -- (a) a chain 5,000 deep ------------------------------------------------------------
    def chain(self) -> None:
        self.wipe()
        depth = self.sizes.chain
        chain = datasets.chain(self.manager, depth)
        self._peer_load(chain.global_id, datasets.global_config(max_depth=depth + 10),
                        chain.specs)
        repo = self.manager.repository
        self.add(timed(f"ancestors of a {depth}-deep leaf",
                       lambda: repo.get_ancestors(chain.leaf), repeat=20,
                       target="p50 <= 10 ms, <= 1.0x peer"),
                 timed("floor: ancestors", self.bare(
                     "MATCH (:HopperInstance {id: $id})<-[:PARENT_OF*]-(a) RETURN a",
                     id=chain.leaf), repeat=20),
                 self._peer_read("ancestors", lambda c: sql.ancestors(c, chain.leaf),
                                 repeat=20))
        self.add(timed("descendants of the chain's root",
                       lambda: repo.get_descendants(chain.global_id), repeat=5),
                 timed("floor: descendants", self.bare(
                     "MATCH (:HopperInstance {id: $id})-[:PARENT_OF*]->(d) RETURN d",
                     id=chain.global_id), repeat=5),
                 self._peer_read("descendants", lambda c: sql.descendants(c, chain.global_id),
                                 repeat=5))
        self.add(timed("nested tree of the chain",
                       lambda: _tree_size(repo.get_instance_tree(chain.global_id)), repeat=5),
                 peer=self._peer_read("nested tree", lambda c: _tree_size(
                     sql.nested_tree(c, chain.global_id)), repeat=5))

    # -- (b) a forest of 100,000 -----------------------------------------------------------
    def forest(self) -> None:
        total, projects = self.sizes.forest, self.sizes.projects
        floor_import = self._import_floor(total, projects)
        self.wipe()
        global_id = datasets.make_global(self.manager)
        forest = datasets.forest_specs(global_id, total=total, projects=projects)
        imported = self.add(once(f"bulk import of {total - 1} instances",
                                 lambda: self.manager.bulk_create(forest.specs),
                                 target=">= 10,000 instances/s"), floor_import)
        imported.extra["instances_per_s"] = (total - 1) / imported.p50
        self._peer_load(global_id, datasets.global_config(), forest.specs)
        repo, read = self.manager.repository, self._peer_read
        floor = timed("floor: subtree rows", self.bare(
            "MATCH (:HopperInstance {id: $id})-[:PARENT_OF*]->(d) RETURN d",
            id=global_id), repeat=3, warmup=1)
        self.add(timed("descendants of the GLOBAL", lambda: repo.get_descendants(global_id),
                       repeat=3, warmup=1), floor,
                 read("descendants", lambda c: sql.descendants(c, global_id), repeat=3,
                      warmup=1))
        flat = self.add(timed("flat tree of the GLOBAL", lambda: repo.get_flat_tree(global_id),
                              repeat=3, warmup=1,
                              target="<= 1.5 s, <= 1.3x floor, <= 1.0x peer"), floor,
                        read("flat tree", lambda c: sql.flat_tree(c, global_id), repeat=3,
                             warmup=1))
        nested = self.add(timed("nested tree of the GLOBAL",
                                lambda: _tree_size(repo.get_instance_tree(global_id)),
                                repeat=3, warmup=1, target="<= 1.2x flat, <= 1.0x peer"),
                          floor, read("nested tree", lambda c: _tree_size(
                              sql.nested_tree(c, global_id)), repeat=3, warmup=1))
        nested.extra["ratio_to_flat"] = nested.p50 / flat.p50
        self.add(timed("lean flat tree of the GLOBAL (id, name, status, parent_id)",
                       lambda: repo.get_tree_fields(global_id, LEAN_FIELDS), repeat=3,
                       warmup=1, target="<= 1.0 s"))
        project = forest.projects[0]
        self.add(timed("one PROJECT's subtree (flat)", lambda: repo.get_flat_tree(project),
                       repeat=20, target="<= 1.0x peer"),
                 timed("floor: one PROJECT's subtree", self.bare(
                     "MATCH (:HopperInstance {id: $id})-[:PARENT_OF*0..]->(d) RETURN d",
                     id=project), repeat=20),
                 read("one PROJECT's subtree", lambda c: sql.flat_tree(c, project), repeat=20))
        self._pages(global_id)
        self._rss(global_id)
        self._http(global_id, forest)
        self._history(forest)

    def _pages(self, global_id: str) -> None:
        """First pages of 100 read by cursor (FIRST_PAGE), as the peer reads them by keyset:
        a filtered list, and the GLOBAL's descendants in level order; then the GLOBAL's
        last full-size-numbered descendants page by the cursor a client walking there
        holds, against the first (page 1,000 of the 100k subtree at full size)."""
        manager, read = self.manager, self._peer_read
        self.add(timed("filtered list page (100 CREATED ORCHESTRATIONs)",
                       lambda: manager.list(scope="ORCHESTRATION", status="CREATED", limit=100,
                                            **FIRST_PAGE).items,
                       repeat=20, target="<= 1.0x peer"),
                 peer=read("filtered list page", lambda c: sql.list_page(
                     c, "ORCHESTRATION", "CREATED", None, 100), repeat=20))
        self.add(timed("descendants page (first 100 of the GLOBAL's)",
                       lambda: manager.descendants_page(global_id, limit=100,
                                                        **FIRST_PAGE).items,
                       repeat=3, warmup=1, target="<= 1.0x peer"),
                 peer=read("descendants page", lambda c: sql.descendants(c, global_id, 100),
                           repeat=3, warmup=1))
        self._deep_descendants_page(global_id)

    def _deep_descendants_page(self, global_id: str) -> None:
        """The page after row ``deep`` of the GLOBAL's descendants by cursor, and the first
        page timed the same way beside it: their ratio is what a cursor buys (within 1.2x)."""
        manager = self.manager
        deep = (self.sizes.forest - 2) // 100 * 100  # 99,900 of the 99,999 below the GLOBAL
        after = _cursor_after(lambda cursor, limit: manager.descendants_page(
            global_id, limit=limit, after=cursor), deep)
        first = timed("descendants page 1 by cursor (beside the deep one)",
                      lambda: manager.descendants_page(global_id, limit=100,
                                                       **FIRST_PAGE).items, repeat=20)
        page = self.add(timed(f"descendants page {deep // 100 + 1:,} (after row {deep:,}, "
                              "by cursor)", lambda: manager.descendants_page(
                                  global_id, limit=100, after=after).items, repeat=20,
                              target="<= 1.2x page 1"))
        page.extra["page_1_p50_ms"] = first.p50 * 1e3
        page.extra["ratio_to_page_1"] = page.p50 / first.p50

    def _history(self, forest: datasets.Forest) -> None:
        """A history page of 100 of one ORCHESTRATION given HISTORY_EVENTS events on both
        sides. Runs last in the phase: it starts the instance's ancestors."""
        leaf = forest.orchestrations[1]  # run-0's first phase run: a leaf
        run, project = forest.orchestrations[0], forest.projects[0]
        for instance_id in (forest.global_id, project, run, leaf):
            if self.manager.get(instance_id).status.value == "CREATED":
                self.manager.start(instance_id)
        toggle = _toggler(self.manager, leaf)
        for _ in range(HISTORY_EVENTS - 2):  # besides its create and start
            toggle()
        peer = self.peer()
        if peer is not None:
            pg.transition(peer.conn, leaf, "start", "CREATED")
            toggle = pg.toggler(peer.conn, leaf)
            for _ in range(HISTORY_EVENTS - 2):
                toggle()
        self.add(timed(f"history page (100 of {HISTORY_EVENTS} events)",
                       lambda: self.manager.history_page(leaf, limit=100, **FIRST_PAGE).items,
                       repeat=20, target="<= 1.0x peer"),
                 peer=self._peer_read("history page", lambda c: sql.history_page(
                     c, leaf, 0, 100), repeat=20))

    def _import_floor(self, total: int, projects: int) -> Result:
        """The import's floor: the same nodes, PARENT_OF edges and one audit event each,
        written by the simplest UNWIND/CREATE in one transaction of 5,000-row statements,
        with the properties prepared beforehand (no validation, no rules, no locks)."""
        self.wipe()
        global_id = datasets.make_global(self.manager)
        forest = datasets.forest_specs(global_id, total=total, projects=projects)
        rows = datasets.plain_rows(forest.specs, global_id)
        # Nodes first, attached after, as the library's import does: a parent may be a row
        # of the same statement, and a MATCH placed before the CREATE would not see it (the
        # floor so wrote about half the rows until 2026-12-07: it now counts them).
        query = ("UNWIND $rows AS row "
                 "CREATE (n:HopperInstance)-[:HAS_EVENT]->(e:InstanceEvent) "
                 "SET n = row.props, n.created_at = datetime(), n.updated_at = datetime(), "
                 "e = row.event, e.at = datetime() "
                 "WITH n, row MATCH (p:HopperInstance {id: row.parent_id}) "
                 "CREATE (p)-[:PARENT_OF]->(n) "
                 "RETURN count(n) AS attached")

        def write() -> list[Any]:
            attached = 0
            with self.driver.session(database=self.database) as session, \
                    session.begin_transaction() as tx:
                for start in range(0, len(rows), 5000):
                    attached += tx.run(query, rows=rows[start:start + 5000]).single(
                        strict=True)["attached"]
                tx.commit()
            if attached != len(rows):
                raise RuntimeError(f"the import floor attached {attached} of {len(rows)} rows")
            return rows
        result = once("floor: bare import", write)
        print(_row(result), flush=True)
        return result

    def _rss(self, global_id: str) -> None:
        """Peak RSS of a fresh process that loads the whole tree (flat, then nested)."""
        code = ("import sys; from bench.measure import peak_rss_mb; "
                "from hopper_graph import InstanceManager, Neo4jSettings, connect; "
                "m = InstanceManager(connect(Neo4jSettings(sys.argv[1])), sys.argv[2] or None); "
                "base = peak_rss_mb(); rows = m.get_flat_tree(sys.argv[3]); "
                "flat = peak_rss_mb(); del rows; t = m.get_instance_tree(sys.argv[3]); "
                "print(base, flat, peak_rss_mb())")
        settings = bench_uri()
        out = subprocess.run([sys.executable, "-c", code, settings, self.database or "",
                              global_id], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent)
        base, flat, nested = (float(x) for x in out.stdout.split())
        result = Result("peak RSS loading the whole tree (MiB)", [nested],
                        target="<= 300 MB",
                        extra={"rss_after_import_mb": base, "rss_flat_mb": flat,
                               "rss_nested_mb": nested})
        self.results.append(result)
        print(f"{result.name:<48} base {base:7.1f}  flat {flat:7.1f}  nested {nested:7.1f}")

    # -- (c) one parent with 10,000 children -------------------------------------------------
    def wide(self) -> None:
        self.wipe()
        count = self.sizes.wide
        deep_offset = count * 9 // 10
        wide = datasets.wide(self.manager, count)
        peer = self._peer_load(wide.global_id, datasets.global_config(), wide.specs)
        # Both sides start the deep page where a client that paged there stands: the peer
        # from the keyset of row deep_offset, ours from the cursor its pages gave, each
        # fetched once here, outside the timing.
        position = sql.child_position(peer.conn, wide.parent_id, deep_offset) if peer else None
        manager, read, parent = self.manager, self._peer_read, wide.parent_id
        after = _cursor_after(lambda cursor, limit: manager.children_page(
            parent, limit=limit, after=cursor), deep_offset)
        first = self.add(timed(f"first page (100) of {count:,} children",
                               lambda: manager.children_page(parent, limit=100,
                                                             **FIRST_PAGE).items,
                               repeat=30, target="p50 <= 10 ms, <= 1.0x peer"),
                         timed("floor: first page", self.bare(
                             "MATCH (:HopperInstance {id: $id})-[:PARENT_OF]->(c) "
                             "RETURN c ORDER BY c.created_at, c.id LIMIT 100",
                             id=parent), repeat=30),
                         read("first page", lambda c: sql.children_page(c, parent, None, 100),
                              repeat=30))
        at, after_id = cursors.created_after(after)
        deep = self.add(timed(f"a deep page (after row {deep_offset:,}, by cursor) of the "
                              "children", lambda: manager.children_page(
                                  parent, limit=100, after=after).items,
                              repeat=30, target="<= 2x first page, <= 1.0x peer"),
                        timed("floor: deep page", self.bare(
                            "MATCH (:HopperInstance {id: $id})-[:PARENT_OF]->(c) "
                            "WHERE c.created_at > $at OR (c.created_at = $at AND c.id > $after) "
                            "RETURN c ORDER BY c.created_at, c.id LIMIT 100",
                            id=parent, at=at, after=after_id), repeat=30),
                        read("deep page", lambda c: sql.children_page(c, parent, position,
                                                                      100), repeat=30))
        deep.extra["ratio_to_first_page"] = deep.p50 / first.p50
        self.add(timed("events feed: 10,000 events",
                       lambda: self.manager.events_since(0, 10_000), repeat=5),
                 timed("floor: events feed", self.bare(
                     "MATCH (e:InstanceEvent) WHERE e.seq > 0 RETURN e ORDER BY e.seq "
                     "LIMIT 10000"), repeat=5),
                 read("events feed", lambda c: sql.events_since(c, 0, 10_000), repeat=5))

    # -- (d) every write, beside the PostgreSQL peer doing the same work ----------------------
    def writes(self) -> None:
        """A cascade stop, an online import, single creates and transitions, concurrent
        writers, heartbeats: each timed on our side, on the floor's (the bare driver, one
        statement) and on the peer's, one after the other."""
        self.wipe()
        cascade_floor = self._cascade_floor()
        self.wipe()
        self._cascade(datasets.wide(self.manager, self.sizes.cascade), cascade_floor)
        import_floor = self._import_floor(self.sizes.bulk, max(20, self.sizes.bulk // 500))
        self.wipe()
        forest = self._online_import(import_floor)
        self._writes(forest)
        self._writers(forest)
        self._heartbeats(forest)

    # -- (g) a move of a 1,000-instance subtree, beside the peer ----------------------------
    def move(self) -> None:
        """One run with its subtree (``sizes.move`` instances) moved from one PROJECT to
        the other and back, each move rewriting the subtree's project_id: ours through
        ``InstanceManager.move`` (every rule, its locks, one audit event), the peer's an
        UPDATE of parent_id after a recursive cycle check, then of the subtree's
        project_id, in one transaction."""
        self.wipe()
        global_id = datasets.make_global(self.manager)
        tree = datasets.movable_specs(global_id, self.sizes.move)
        self.manager.bulk_create(tree.specs)
        peer = self._peer_load(global_id, datasets.global_config(), tree.specs)
        peer_result = None
        if peer is not None:
            peer_result = timed("peer: move", _back_and_forth(
                lambda to: pg.move(peer.conn, tree.root, to), tree.projects),
                repeat=MOVES, warmup=2)
        result = self.add(timed(
            f"move of a {self.sizes.move:,}-instance subtree to another PROJECT",
            _back_and_forth(lambda to: self.manager.move(tree.root, to), tree.projects),
            repeat=MOVES, warmup=2, target="<= 1.0x peer"), peer=peer_result)
        result.extra["rewritten"] = self.sizes.move

    def _start_wide(self, wide: datasets.Wide) -> None:
        manager = self.manager
        manager.start(wide.global_id)
        manager.start(wide.parent_id)
        _parallel(lambda child: manager.start(child), wide.children, threads=4)

    def _cascade_floor(self) -> Result:
        wide = datasets.wide(self.manager, self.sizes.cascade)
        self._start_wide(wide)
        result = once("floor: bare cascade stop", lambda: [0] * self.floor.cascade_stop(
            wide.parent_id))
        print(_row(result), flush=True)
        return result

    def _cascade(self, wide: datasets.Wide, floor: Result | None = None) -> None:
        manager = self.manager
        self._start_wide(wide)
        peer = self._peer_cascade(wide)
        result = self.add(once(f"cascade stop of {len(wide.children)} descendants",
                               lambda: manager.stop(wide.parent_id).cascaded,
                               target="<= 1 s, <= 1.0x peer"), floor=floor, peer=peer)
        result.extra["changes"] = result.rows

    def _peer_cascade(self, wide: datasets.Wide) -> Result | None:
        peer = self.peer()
        if peer is None:
            return None
        peer.reset()
        peer.copy([datasets.plain_global(wide.global_id, datasets.global_config()),
                   *datasets.plain_rows(wide.specs, wide.global_id)])
        peer.set_status([wide.global_id, *(s.id for s in wide.specs if s.id)], "ACTIVE")
        peer.analyze()
        changes: list[int] = []
        result = once("peer: cascade stop", lambda: changes.append(
            pg.cascade_stop(peer.conn, wide.parent_id)))
        result.extra["changes"] = changes[0]  # the root's own stop included
        return result

    def _online_import(self, floor: Result | None = None) -> datasets.Forest:
        """The write phase's hierarchy: imported by ``bulk_create`` (every rule checked)
        and by the peer's COPY of the same specs."""
        total = self.sizes.bulk
        global_id = datasets.make_global(self.manager)
        forest = datasets.forest_specs(global_id, total=total, projects=max(20, total // 500))
        peer = self._peer_import(forest)
        count = len(forest.specs)
        result = once(f"online bulk import of {count} instances",
                      lambda: self.manager.bulk_create(forest.specs),
                      target=">= 10,000 instances/s, <= 1.0x peer, >= 0.8x floor rate")
        result.rate = count / result.p50
        if floor is not None:
            floor.rate = count / floor.p50
        self.add(result, floor=floor, peer=peer)
        return forest

    def _peer_import(self, forest: datasets.Forest) -> Result | None:
        peer = self.peer()
        if peer is None:
            return None
        peer.reset()
        peer.copy([datasets.plain_global(forest.global_id, datasets.global_config())])
        rows = datasets.plain_rows(forest.specs, forest.global_id)
        result = once("peer: COPY", lambda: peer.copy(rows))
        result.rate = len(rows) / result.p50
        peer.analyze()
        return result

    def _writes(self, forest: datasets.Forest) -> None:
        """Single creates under one PROJECT, then each transition of CYCLE on its own
        instances under another."""
        manager, peer = self.manager, self.peer()
        project, busy = forest.projects[1], forest.projects[2]
        peer_create = None
        if peer is not None:
            config, names = datasets.stored_config("ORCHESTRATION"), iter(range(10**6))
            peer_create = timed("peer: single create", lambda: pg.create(
                peer.conn, f"bench-create-{next(names)}", "ORCHESTRATION", project,
                "PERSISTENT", config), repeat=50, warmup=5)
        counter = iter(range(10**6))
        props = {"scope": "ORCHESTRATION", "status": "CREATED", "instance_type": "PERSISTENT",
                 "parent_id": project, "project_id": manager.get(project).project_id,
                 "config": datasets.stored_config("ORCHESTRATION"), "config_set": "{}",
                 "metadata": "{}", "version": 1, "depth": 2}
        floor_create = timed("floor: bare create", lambda: self.floor.create(
            project, {**props, "name": f"bench-floor-{next(counter)}"}), repeat=50, warmup=5)
        self.add(timed("single create (validated, audited)", lambda: manager.create(
            name=f"bench-create-{next(counter)}", scope="ORCHESTRATION", parent_id=project,
            instance_type="PERSISTENT"), repeat=50, warmup=5,
            target="p50 <= 3 ms, <= 1.5x floor, <= 1.0x peer"),
            floor=floor_create, peer=peer_create)
        targets = [manager.create(name=f"bench-t-{i}", scope="ORCHESTRATION", parent_id=busy,
                                  instance_type="PERSISTENT").id for i in range(60)]
        bare = [manager.create(name=f"bench-f-{i}", scope="ORCHESTRATION", parent_id=busy,
                               instance_type="PERSISTENT").id for i in range(60)]
        manager.start(forest.global_id)
        manager.start(busy)
        peer_targets = self._peer_targets(busy, forest.global_id, len(targets))
        for event, expected in CYCLE:
            peer_result = None
            if peer is not None:
                pids = iter(peer_targets)
                peer_result = timed(f"peer: {event}", lambda e=event, x=expected, i=pids:
                                    pg.transition(peer.conn, next(i), e, x),
                                    repeat=50, warmup=5)
            ids, floor_ids = iter(targets), iter(bare)
            to = TRANSITIONS[InstanceStatus(expected), event].value
            floor = timed(f"floor: bare {event}", lambda e=event, t=to, i=floor_ids:
                          self.floor.transition(next(i), e, t), repeat=50, warmup=5)
            self.add(timed(f"single transition: {event}",
                           lambda event=event, ids=ids: manager.transition(next(ids), event),
                           repeat=50, warmup=5,
                           target="p50 <= 2 ms, <= 1.2x floor, <= 1.0x peer"),
                     floor=floor, peer=peer_result)

    def _peer_targets(self, parent_id: str, global_id: str, count: int) -> list[str]:
        peer = self.peer()
        if peer is None:
            return []
        config = datasets.stored_config("ORCHESTRATION")
        ids = [pg.create(peer.conn, f"bench-t-{i}", "ORCHESTRATION", parent_id, "PERSISTENT",
                         config) for i in range(count)]
        peer.set_status([global_id, parent_id], "ACTIVE")
        return ids

    def _writers(self, forest: datasets.Forest) -> None:
        """One writer, then WRITERS at once, each toggling pause/resume on a running
        ORCHESTRATION of its own PROJECT for ``writers_seconds``: ours through one shared
        InstanceManager, the peer's with a connection per thread."""
        chosen = _writer_instances(forest, 2 * WRITERS)
        chosen, bare = chosen[:WRITERS], chosen[WRITERS:]
        for project, run in chosen:  # the bare toggler takes CREATED for PAUSED
            self.manager.start(project)
            self.manager.start(run)
        ours = [_toggler(self.manager, run) for _, run in chosen]
        floors = [self.floor.toggler(run) for _, run in bare]
        peer_one, peer_many = self._peer_writers(chosen)
        seconds = self.sizes.writers_seconds
        floor_one = concurrent("floor: 1 writer", floors[:1], seconds)
        floor_many = concurrent(f"floor: {WRITERS} writers", floors, seconds)
        one = concurrent("1 writer, pause/resume", ours[:1], seconds,
                         target=f"the base of the {WRITERS}-writer ratio")
        many = concurrent(f"{WRITERS} concurrent writers, each on its own PROJECT", ours,
                          seconds, target=">= 3x one writer, p99 <= 25 ms, <= 1.0x peer")
        assert one.rate and many.rate
        many.extra["ratio_to_one_writer"] = many.rate / one.rate
        many.extra["batch_largest"] = self.manager.repository.batches.transitions.largest
        if peer_one and peer_many and peer_one.rate and peer_many.rate:
            many.extra["peer_ratio_to_one_writer"] = peer_many.rate / peer_one.rate
        self.add(one, floor=floor_one, peer=peer_one)
        self.add(many, floor=floor_many, peer=peer_many)

    def _heartbeats(self, forest: datasets.Forest) -> None:
        """Heartbeats of running ORCHESTRATIONs: one at a time, then 8 and 16 threads,
        each on its own run, beside the bare statement from 8 threads."""
        runs = _writer_instances(forest, 2 * WRITERS)
        manager = self.manager
        floor = timed("floor: bare heartbeat", lambda: self.floor.heartbeat(runs[0][1]),
                      repeat=300, warmup=20)
        self.add(timed("one heartbeat", lambda: manager.heartbeat(runs[0][1]), repeat=300,
                       warmup=20, target="p50 <= 1.2x floor"), floor=floor)
        seconds = self.sizes.writers_seconds
        floor_many = concurrent(f"floor: {WRITERS} threads of heartbeats",
                                [lambda r=r: self.floor.heartbeat(r) for _, r in runs[:WRITERS]],
                                seconds)
        print(_row(floor_many), flush=True)
        for threads in (WRITERS, 2 * WRITERS):
            result = concurrent(f"heartbeats, {threads} threads",
                                [lambda r=r: manager.heartbeat(r) for _, r in runs[:threads]],
                                seconds, target=f">= 3x the {WRITERS}-thread floor rate")
            assert result.rate and floor_many.rate
            result.extra["ratio_to_floor_rate"] = result.rate / floor_many.rate
            self.add(result, floor=floor_many)

    def fleet(self) -> None:
        """A fleet's heartbeats over HTTP against single reads (bench/http.py), on a forest
        of the write phase's size, every run's instance CREATED (a heartbeat takes any
        status but ARCHIVED)."""
        from bench import http

        self.wipe()
        global_id = datasets.make_global(self.manager)
        forest = datasets.forest_specs(global_id, total=self.sizes.bulk,
                                       projects=max(20, self.sizes.bulk // 500))
        self.manager.bulk_create(forest.specs)
        for threads in self.fleet_threads:
            http.fleet(self, forest.orchestrations[:5000], threads)

    def _peer_writers(self, chosen: list[tuple[str, str]]
                      ) -> tuple[Result | None, Result | None]:
        peer = self.peer()
        if peer is None:
            return None, None
        peer.set_status([i for pair in chosen for i in pair], "ACTIVE")
        seconds = self.sizes.writers_seconds
        with ExitStack() as stack:
            conns = [stack.enter_context(peer.connect()) for _ in chosen]
            workers = [pg.toggler(conn, run) for conn, (_, run) in zip(conns, chosen,
                                                                     strict=True)]
            one = concurrent("peer: 1 writer", workers[:1], seconds)
            many = concurrent(f"peer: {WRITERS} writers", workers, seconds)
        return one, many

    # -- labels: a selector page among labelled runs ------------------------------------------
    def labels(self) -> None:
        """The first page of 100, by cursor, of the selector ``team=infra,!legacy`` among
        ``labelled`` runs that all carry labels (a quarter are team=infra, a tenth legacy),
        beside the peer reading the same page from its GIN-indexed ``labels`` jsonb. Ours
        seeks the team=infra edges in creation order and stops at the page's end."""
        self.wipe()
        count = self.sizes.labelled
        global_id = datasets.make_global(self.manager)
        project = self.manager.create(
            name="labelled", scope="PROJECT", parent_id=global_id, project_id="labelled",
            config={"limits": {"max_child_instances": count + 1}})
        specs = datasets.labelled_specs(project.id, count)
        self.manager.bulk_create(specs)
        project_spec = InstanceSpec(id=project.id, name="labelled", scope="PROJECT",
                                    parent_id=global_id, project_id="labelled",
                                    config={"limits": {"max_child_instances": count + 1}})
        self._peer_load(global_id, datasets.global_config(), [project_spec, *specs])
        selector = "team=infra,!legacy"
        self.add(timed(f"selector page (100 of {count:,} labelled runs)",
                       lambda: self.manager.list(selector=selector, limit=100,
                                                 **FIRST_PAGE).items,
                       repeat=20, target="<= 1.0x peer"),
                 peer=self._peer_read("selector page", lambda c: sql.selected_page(
                     c, "team", "infra", "legacy", 100), repeat=20))

    # -- (e) the same reads and writes at 10,000 and at 1,000,000 instances ------------------
    def scale(self) -> None:
        """Time six operations on a graph of ``scale_small`` instances, grow the same graph
        to ``scale_large`` with ``bulk_create``, and time them again on the same instances:
        each operation's cost should not depend on the size of the graph. No peer."""
        self.wipe()
        small, large = self.sizes.scale_small, self.sizes.scale_large
        scale = datasets.scale_base(self.manager, small, large)
        for instance_id in (scale.global_id, scale.parent, scale.runner):
            self.manager.start(instance_id)
        store = _store_dir()
        store_small = _disk_mib(store) if store else None
        before = self._scale_round(scale)
        self._grow(scale, large)
        for was, now in zip(before, self._scale_round(scale), strict=True):
            now.extra[f"p50_ms_at_{small}"] = was.p50 * 1e3
            now.extra["ratio_to_small"] = now.p50 / was.p50
        rss = Result(f"peak RSS of the benchmark process at {large:,} instances (MiB)",
                     [peak_rss_mb()], target="the whole run's peak so far")
        rss.extra.update(_store_extra(store, store_small, large))
        self.results.append(rss)
        print(f"{rss.name:<48} {rss.p50:7.1f}  store {rss.extra['store_mib']}", flush=True)

    def _scale_round(self, scale: datasets.Scale) -> list[Result]:
        """The scale phase's six operations on the graph as it stands."""
        manager, size, names = self.manager, scale.size, iter(range(10**6))
        ops: list[tuple[str, Callable[[], Any]]] = [
            ("get by id", lambda: manager.get(scale.deep)),
            ("children page (100, by cursor)", lambda: manager.children_page(
                scale.parent, limit=100, **FIRST_PAGE).items),
            ("ancestors of a depth-4 node", lambda: manager.get_ancestors(scale.deep)),
            ("filtered list page (scope+status, 100, by cursor)", lambda: manager.list(
                scope="ORCHESTRATION", status="CREATED", limit=100, **FIRST_PAGE).items),
            ("single create", lambda: manager.create(
                name=f"scale-create-{size}-{next(names)}", scope="ORCHESTRATION",
                parent_id=scale.parent, instance_type="PERSISTENT")),
            ("single transition (pause/resume)", _toggler(manager, scale.runner)),
        ]
        # an even number of toggles in all (warm-up included): the runner ends ACTIVE
        return [self.add(timed(f"scale {size:,}: {name}", fn, repeat=30, warmup=4,
                               target=f"<= 1.2x at {self.sizes.scale_small:,}"
                               if size > self.sizes.scale_small else None))
                for name, fn in ops]

    def _grow(self, scale: datasets.Scale, size: int) -> None:
        """Grow the graph to ``size`` by ``bulk_create`` of whole PROJECTs, SCALE_BATCH
        instances a transaction, each batch built just before it is written."""
        start = scale.size

        def grow() -> None:
            for batch in datasets.scale_growth(scale, size):
                self.manager.bulk_create(batch)
        result = once(f"scale: grow to {size:,} (bulk_create, {datasets.SCALE_BATCH:,} "
                      "a batch)", grow)
        result.rate = (size - start) / result.p50
        self.add(result)
        self._settle()

    def _settle(self) -> None:
        """Let the server finish what a large import leaves it to do before anything is
        timed: sample the indexes it outdated, then give its background flush of the
        import (Community has no checkpoint procedure) SETTLE_SECONDS. Timed right after
        growing to 1M, a list page took 17 ms and a create 24 ms; a minute later, on the
        same graph, 4.9 and 8.6 ms."""
        self.driver.execute_query("CALL db.resampleOutdatedIndexes()", database_=self.database)
        time.sleep(self.sizes.settle_seconds)

    def _http(self, global_id: str, forest: datasets.Forest) -> None:
        from bench import http

        http.run(self, global_id, forest)


def _back_and_forth(move: Callable[[str], Any], projects: list[str]) -> Callable[[], Any]:
    """A function that moves to the other of two PROJECTs at each call (the first call
    to the second PROJECT, where the subtree is not)."""
    turn = iter(range(10**9))
    return lambda: move(projects[(next(turn) + 1) % 2])


def _tree_size(root: Any) -> int:
    """Nodes in a nested tree (ours or the peer's), counted without recursion."""
    size, stack = 0, [root]
    while stack:
        node = stack.pop()
        size += 1
        stack.extend(node.children)
    return size


def _cursor_after(page: Callable[[str, int], Page], rows: int) -> str:
    """The cursor a client holds after paging through ``rows`` rows by cursor:
    ``page(after, limit)`` gives each page, WALK rows at most."""
    cursor, seen = cursors.FIRST, 0
    while seen < rows:
        got = page(cursor, min(WALK, rows - seen))
        seen += len(got.items)
        if got.next is None:
            raise RuntimeError(f"only {seen} rows to page through, not {rows}")
        cursor = got.next
    return cursor


def _store_dir() -> Path | None:
    """The folder of the benchmark's database on this machine, or None when unknown.

    Known for the project's local servers (``hopper_graph.local_neo4j``, under
    ``HOPPER_NEO4J_HOME``): the one whose neo4j.conf listens on the Bolt port the benchmark
    uses, when that is on this host. Any other server's files are out of reach."""
    parts = urlsplit(bench_uri())
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return None
    listen = f"server.bolt.listen_address=127.0.0.1:{parts.port}"
    for conf in sorted(default_cache_dir().glob("*/conf/neo4j.conf")):
        lines = conf.read_text().splitlines()
        if listen in lines:
            data = next((line.split("=", 1)[1] for line in lines
                         if line.startswith("server.directories.data=")), None)
            return Path(data) if data else conf.parent.parent / "data"
    return None


def _disk_mib(folder: Path) -> float:
    """Space the files under ``folder`` take on disk (allocated blocks, as du counts)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total / 2**20


def _store_extra(store: Path | None, before: float | None, size: int) -> dict[str, Any]:
    """The store's size on disk after the scale phase, its growth during the phase, and
    where it lies; "unknown" for a server whose files are not on this machine."""
    if store is None or before is None:
        return {"store_mib": "unknown"}
    after = _disk_mib(store)
    return {"store_mib": round(after, 1), "store_growth_mib": round(after - before, 1),
            "store_dir": str(store), "store_at": size}


def _parallel(fn: Callable[[Any], Any], items: list[Any], threads: int) -> None:
    chunks = [items[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda c=c: [fn(x) for x in c]) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _writer_instances(forest: datasets.Forest, count: int) -> list[tuple[str, str]]:
    """``count`` top-level PROJECTs other than those ``_writes`` uses, each with its first
    ORCHESTRATION."""
    first_run: dict[str, str] = {}
    for spec in forest.specs:
        if spec.scope == "ORCHESTRATION" and spec.parent_id and spec.id:
            first_run.setdefault(spec.parent_id, spec.id)
    return [(p, first_run[p]) for p in forest.projects[3:3 + count]]


def _toggler(manager: InstanceManager, instance_id: str) -> Callable[[], Any]:
    """Pause ``instance_id`` (ACTIVE to begin with), resume it the next call, and so on."""
    paused = [False]

    def toggle() -> Any:
        result = (manager.resume if paused[0] else manager.pause)(instance_id)
        paused[0] = not paused[0]
        return result
    return toggle


def _row(result: Result) -> str:
    ratio = f"{result.ratio:5.2f}x" if result.ratio else "      "
    line = (f"{result.name:<48} p50 {result.p50 * 1e3:9.1f} ms  p95 {result.p95 * 1e3:9.1f}"
            f"  max {result.max * 1e3:9.1f}  {ratio}")
    if result.rate is not None:
        line += f"  p99 {result.p99 * 1e3:.1f} ms  {result.rate:,.0f}/s"
    peer = result.peer
    if peer is not None and result.ratio_to_peer is not None:
        figure = (f"{peer.rate:,.0f}/s" if result.ratio_of == "rate" and peer.rate
                  else f"p50 {peer.p50 * 1e3:.1f} ms")
        line += f"  | peer {figure}: {result.ratio_to_peer:.2f}x ({result.ratio_of})"
    return f"{line}  {result.target or ''}"


RATIO_LEGEND = ("Ratio to peer: ours against the PostgreSQL peer's in the same run, p50 over "
                "p50 (p50), or for a throughput the peer's rate over ours (rate); at or under "
                "1.00x we are at least as fast. Ratio to floor: our p50 over the bare "
                "driver's.")

COLUMNS = ["operation", "ratio to peer", "p50", "peer p50", "p95", "p99", "max", "rate",
           "peer rate", "floor p50", "ratio to floor", "target"]


def _cells(r: Result) -> list[str]:
    if r.name.startswith("peak RSS"):
        return [r.name, "", f"{r.p50:.0f} MiB", *[""] * 8, r.target or ""]
    peer, to_peer = r.peer, r.ratio_to_peer
    notes = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in r.extra.items())
    return [r.name, f"{to_peer:.2f}x ({r.ratio_of})" if to_peer is not None else "",
            _ms(r.p50), _ms(peer.p50) if peer else "", _ms(r.p95), _ms(r.p99), _ms(r.max),
            f"{r.rate:,.0f}/s" if r.rate else "",
            f"{peer.rate:,.0f}/s" if peer and peer.rate else "",
            _ms(r.floor.p50) if r.floor else "", f"{r.ratio:.2f}x" if r.ratio else "",
            f"{r.target or ''}{' (' + notes + ')' if notes else ''}"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def markdown(results: list[Result], meta: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.1f}" for x in meta["load_average_at_end"])
    lines = [f"Run {meta['when']} on {meta['machine']}; Neo4j {meta['neo4j']}; peer "
             f"{meta['peer']}; load average at the end {load}.", "", RATIO_LEGEND, "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    return "\n".join(lines + _scale_table(results, meta["sizes"])) + "\n"


def _scale_table(results: list[Result], sizes: dict[str, int]) -> list[str]:
    """The scale phase side by side: each operation at both sizes and their ratio, then
    the growth, the process's peak RSS and the store on disk; nothing without the phase."""
    large = [r for r in results if "ratio_to_small" in r.extra]
    if not large:
        return []
    small_n, large_n = sizes["scale_small"], sizes["scale_large"]
    lines = ["", f"Scale phase: the same operations on the same instances at {small_n:,} "
             f"and at {large_n:,} instances, p50.", "",
             f"| operation | at {small_n:,} | at {large_n:,} | ratio | target |",
             "|---|---|---|---|---|"]
    for r in large:
        lines.append(f"| {r.name.split(': ', 1)[1]} | {_ms(r.extra[f'p50_ms_at_{small_n}'] / 1e3)}"
                     f" | {_ms(r.p50)} | {r.extra['ratio_to_small']:.2f}x | <= 1.20x |")
    for r in results:
        if r.name.startswith("scale: grow"):
            lines.append(f"| {r.name.removeprefix('scale: ')} | | {r.p50:.1f} s "
                         f"({r.rate or 0:,.0f}/s) | | |")
        elif r.name.startswith("peak RSS of the benchmark process"):
            store = r.extra["store_mib"]
            grown = r.extra.get("store_growth_mib")
            lines.append(f"| peak RSS of the Python process | | {r.p50:.0f} MiB | | |")
            lines.append("| store on disk (the database's data folder) | | "
                         + (f"{store:,.0f} MiB ({grown:,.0f} MiB grown in the phase)"
                            if grown is not None else str(store)) + " | | |")
    return lines


PHASES = ["chain", "forest", "wide", "writes", "fleet", "move", "labels", "scale"]
DEFAULT_PHASES = PHASES[:-1]
"""What runs without ``--only``: all but scale, which at full size grows a graph to a
million instances (several minutes of bulk import alone, about doubling the run)."""


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the peer's cluster is stopped and removed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="a fifth of the full sizes")
    sizes.add_argument("--smoke", action="store_true",
                       help="tiny sizes: checks that every phase runs, measures nothing")
    parser.add_argument("--only", choices=PHASES, action="append",
                        help="run this phase (repeatable); without it, every phase but "
                             "scale, which at full size builds 1,000,000 instances and "
                             "runs apart: --only scale")
    parser.add_argument("--fleet-threads", type=int, action="append", metavar="N",
                        help="serve the fleet phase with N threads per worker (repeatable, "
                             f"one load each; default {DEFAULT_THREADS}, as serve does)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    settings = Neo4jSettings.from_env()
    if settings is None:
        # A 100k-instance bulk import is one transaction of ~1.5 GiB: give it room.
        server = local_bench_server(heap="4g", pagecache="1g")
        server.start()
        settings = Neo4jSettings(server.uri, timeout=120)
    driver = connect(settings)
    apply_schema(driver, settings.database)
    bench = Bench(driver, settings.database,
                  SMOKE if args.smoke else QUICK if args.quick else FULL)
    bench.fleet_threads = args.fleet_threads or bench.fleet_threads
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        for phase in args.only or DEFAULT_PHASES:
            getattr(bench, phase)()
    finally:
        bench.close()
    version = driver.execute_query("CALL dbms.components() YIELD versions RETURN versions[0]"
                                   ).records[0][0]
    meta = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                       f"{platform.python_implementation()} {platform.python_version()}",
            "neo4j": version, "sizes": asdict(bench.sizes), "peak_rss_mb": peak_rss_mb(),
            "peer": bench.peer_version or (f"skipped: {bench.peer_skipped}"
                                           if bench.peer_skipped else "not used"),
            # Other work on the machine skews every figure: say how busy it was.
            "load_average_at_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": [r.to_dict()
                                                               for r in bench.results]},
                                   indent=2))
    args.out.with_suffix(".md").write_text(markdown(bench.results, meta))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
