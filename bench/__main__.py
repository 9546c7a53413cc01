"""``python -m bench [--quick | --smoke] [--out FILE]``: build the hierarchies, measure, report.

Uses ``HOPPER_NEO4J_URI`` when set, else starts the project's local Neo4j instance
``bench`` (Bolt 7700) so a developer's and the tests' graphs are left alone. The graph of
that database is wiped between phases.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neo4j import Driver, RoutingControl

from bench import datasets
from bench.measure import Result, once, peak_rss_mb, timed
from hopper_graph import InstanceManager, Neo4jSettings, apply_schema, connect
from hopper_graph.local_neo4j import LocalNeo4j

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sizes:
    chain: int  # depth of the leaf
    forest: int  # instances, the GLOBAL included
    projects: int
    wide: int  # children of the one parent
    http_seconds: float  # how long each HTTP load runs


FULL = Sizes(chain=5000, forest=100_000, projects=1000, wide=10_000, http_seconds=10.0)
QUICK = Sizes(chain=1000, forest=20_000, projects=200, wide=2000, http_seconds=10.0)
SMOKE = Sizes(chain=50, forest=600, projects=10, wide=120, http_seconds=1.0)
"""Every phase in seconds: what the test suite runs to keep the benchmark working."""


class Bench:
    def __init__(self, driver: Driver, database: str | None, sizes: Sizes = FULL) -> None:
        self.driver = driver
        self.database = database
        self.sizes = sizes
        self.results: list[Result] = []
        self.manager = InstanceManager(driver, database)

    def add(self, result: Result, floor: Result | None = None) -> Result:
        result.floor = floor
        self.results.append(result)
        print(_row(result), flush=True)
        return result

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
                        "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()

    # -- (a) a chain 5,000 deep ------------------------------------------------------------
    def chain(self) -> None:
        self.wipe()
        depth = self.sizes.chain
        chain = datasets.chain(self.manager, depth)
        repo = self.manager.repository
        self.add(timed(f"ancestors of a {depth}-deep leaf",
                       lambda: repo.get_ancestors(chain.leaf), repeat=20,
                       target="p50 <= 10 ms"),
                 timed("floor: ancestors", self.bare(
                     "MATCH (:HopperInstance {id: $id})<-[:PARENT_OF*]-(a) RETURN a",
                     id=chain.leaf), repeat=20))
        self.add(timed("descendants of the chain's root",
                       lambda: repo.get_descendants(chain.global_id), repeat=5),
                 timed("floor: descendants", self.bare(
                     "MATCH (:HopperInstance {id: $id})-[:PARENT_OF*]->(d) RETURN d",
                     id=chain.global_id), repeat=5))
        self.add(timed("nested tree of the chain",
                       lambda: _tree_size(repo.get_instance_tree(chain.global_id)), repeat=5))

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
        repo = self.manager.repository
        floor = timed("floor: subtree rows", self.bare(
            "MATCH (:HopperInstance {id: $id})-[:PARENT_OF*]->(d) RETURN d",
            id=global_id), repeat=3, warmup=1)
        self.add(timed("descendants of the GLOBAL", lambda: repo.get_descendants(global_id),
                       repeat=3, warmup=1), floor)
        flat = self.add(timed("flat tree of the GLOBAL", lambda: repo.get_flat_tree(global_id),
                              repeat=3, warmup=1, target="<= 1.5 s, <= 1.3x floor"), floor)
        nested = self.add(timed("nested tree of the GLOBAL",
                                lambda: _tree_size(repo.get_instance_tree(global_id)),
                                repeat=3, warmup=1, target="<= 1.2x flat"), floor)
        nested.extra["ratio_to_flat"] = nested.p50 / flat.p50
        project = forest.projects[0]
        self.add(timed("one PROJECT's subtree (flat)", lambda: repo.get_flat_tree(project),
                       repeat=20),
                 timed("floor: one PROJECT's subtree", self.bare(
                     "MATCH (:HopperInstance {id: $id})-[:PARENT_OF*0..]->(d) RETURN d",
                     id=project), repeat=20))
        self._rss(global_id)
        self._writes(forest)
        self._http(global_id, forest)

    def _import_floor(self, total: int, projects: int) -> Result:
        """The import's floor: the same nodes, PARENT_OF edges and one audit event each,
        written by the simplest UNWIND/CREATE in one transaction of 5,000-row statements,
        with the properties prepared beforehand (no validation, no rules, no locks)."""
        self.wipe()
        global_id = datasets.make_global(self.manager)
        forest = datasets.forest_specs(global_id, total=total, projects=projects)
        rows = datasets.plain_rows(forest.specs, global_id)
        query = ("UNWIND $rows AS row "
                 "MATCH (p:HopperInstance {id: row.parent_id}) "
                 "CREATE (p)-[:PARENT_OF]->(n:HopperInstance)-[:HAS_EVENT]->(e:InstanceEvent) "
                 "SET n = row.props, n.created_at = datetime(), n.updated_at = datetime(), "
                 "e = row.event, e.at = datetime()")

        def write() -> list[Any]:
            with self.driver.session(database=self.database) as session, \
                    session.begin_transaction() as tx:
                for start in range(0, len(rows), 5000):
                    tx.run(query, rows=rows[start:start + 5000]).consume()
                tx.commit()
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
        settings = _settings_of(self.driver)
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

    def _writes(self, forest: datasets.Forest) -> None:
        manager = self.manager
        project = forest.projects[1]
        counter = iter(range(10**6))
        self.add(timed("single create (validated, audited)", lambda: manager.create(
            name=f"bench-create-{next(counter)}", scope="ORCHESTRATION", parent_id=project,
            instance_type="PERSISTENT"), repeat=50, warmup=5, target="p50 <= 10 ms"))
        targets = [manager.create(name=f"bench-t-{i}", scope="ORCHESTRATION",
                                  parent_id=forest.projects[2], instance_type="PERSISTENT").id
                   for i in range(60)]
        manager.start(forest.global_id)
        manager.start(forest.projects[2])
        for event in ("start", "pause", "resume", "stop"):
            ids = iter(targets)
            self.add(timed(f"single transition: {event}",
                           lambda event=event, ids=ids: manager.transition(next(ids), event),
                           repeat=50, warmup=5, target="p50 <= 10 ms"))

    # -- (c) one parent with 10,000 children -------------------------------------------------
    def wide(self) -> None:
        self.wipe()
        count = self.sizes.wide
        deep_offset = count * 9 // 10
        wide = datasets.wide(self.manager, count)
        repo = self.manager.repository
        first = self.add(timed(f"first page (100) of {count:,} children",
                               lambda: repo.get_children(wide.parent_id, 0, 100), repeat=30,
                               target="p50 <= 10 ms"),
                         timed("floor: first page", self.bare(
                             "MATCH (:HopperInstance {id: $id})-[:PARENT_OF]->(c) "
                             "RETURN c ORDER BY c.created_at SKIP 0 LIMIT 100",
                             id=wide.parent_id), repeat=30))
        deep = self.add(timed(f"a deep page (offset {deep_offset:,}) of the children",
                              lambda: repo.get_children(wide.parent_id, deep_offset, 100),
                              repeat=30, target="<= 2x first page"),
                        timed("floor: deep page", self.bare(
                            "MATCH (:HopperInstance {id: $id})-[:PARENT_OF]->(c) "
                            "RETURN c ORDER BY c.created_at SKIP $skip LIMIT 100",
                            id=wide.parent_id, skip=deep_offset), repeat=30))
        deep.extra["ratio_to_first_page"] = deep.p50 / first.p50
        self._cascade(wide)
        self.add(timed("events feed: 10,000 events",
                       lambda: self.manager.events_since(0, 10_000), repeat=5),
                 timed("floor: events feed", self.bare(
                     "MATCH (e:InstanceEvent) WHERE e.seq > 0 RETURN e ORDER BY e.seq "
                     "LIMIT 10000"), repeat=5))

    def _cascade(self, wide: datasets.Wide) -> None:
        manager = self.manager
        manager.start(wide.global_id)
        manager.start(wide.parent_id)
        _parallel(lambda child: manager.start(child), wide.children, threads=4)
        result = self.add(once(f"cascade stop of {len(wide.children)} descendants",
                               lambda: manager.stop(wide.parent_id).cascaded,
                               target="<= 2 s"))
        result.extra["changes"] = result.rows

    def _http(self, global_id: str, forest: datasets.Forest) -> None:
        from bench import http

        http.run(self, global_id, forest)


def _tree_size(root: Any) -> int:
    size, stack = 0, [root]
    while stack:
        node = stack.pop()
        size += 1
        stack.extend(node.children)
    return size


def _parallel(fn: Callable[[Any], Any], items: list[Any], threads: int) -> None:
    chunks = [items[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda c=c: [fn(x) for x in c]) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _settings_of(driver: Driver) -> str:
    return os.environ.get("HOPPER_NEO4J_URI") or LocalNeo4j(
        name="bench", bolt_port=7700, http_port=7701).uri


def _row(result: Result) -> str:
    ratio = f"{result.ratio:5.2f}x" if result.ratio else "      "
    return (f"{result.name:<48} p50 {result.p50 * 1e3:9.1f} ms  p95 {result.p95 * 1e3:9.1f}"
            f"  max {result.max * 1e3:9.1f}  {ratio}  {result.target or ''}")


def markdown(results: list[Result], meta: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.1f}" for x in meta["load_average_at_end"])
    lines = [f"Run {meta['when']} on {meta['machine']}; Neo4j {meta['neo4j']}; load average "
             f"at the end {load}.", "",
             "| operation | p50 | p95 | max | floor p50 | ratio | target |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        floor = f"{r.floor.p50 * 1e3:.1f} ms" if r.floor else ""
        ratio = f"{r.ratio:.2f}x" if r.ratio else ""
        if r.name.startswith("peak RSS"):
            lines.append(f"| {r.name} | {r.p50:.0f} MiB | | | | | {r.target} |")
            continue
        notes = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in r.extra.items())
        lines.append(f"| {r.name} | {r.p50 * 1e3:.1f} ms | {r.p95 * 1e3:.1f} ms | "
                     f"{r.max * 1e3:.1f} ms | {floor} | {ratio} | {r.target or ''}"
                     f"{' (' + notes + ')' if notes else ''} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="a fifth of the full sizes")
    sizes.add_argument("--smoke", action="store_true",
                       help="tiny sizes: checks that every phase runs, measures nothing")
    parser.add_argument("--only", choices=["chain", "forest", "wide"], action="append")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    settings = Neo4jSettings.from_env()
    if settings is None:
        # A 100k-instance bulk import is one transaction of ~1.5 GiB: give it room.
        server = LocalNeo4j(name="bench", bolt_port=7700, http_port=7701, heap="4g",
                            pagecache="1g")
        server.start()
        settings = Neo4jSettings(server.uri, timeout=120)
    driver = connect(settings)
    apply_schema(driver, settings.database)
    bench = Bench(driver, settings.database,
                  SMOKE if args.smoke else QUICK if args.quick else FULL)
    for phase in args.only or ["chain", "forest", "wide"]:
        getattr(bench, phase)()
    version = driver.execute_query("CALL dbms.components() YIELD versions RETURN versions[0]"
                                   ).records[0][0]
    meta = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                       f"{platform.python_implementation()} {platform.python_version()}",
            "neo4j": version, "sizes": asdict(bench.sizes), "peak_rss_mb": peak_rss_mb(),
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
