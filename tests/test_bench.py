"""The benchmark runs end to end: ``python -m bench --smoke`` with every phase builds all
three hierarchies in the test Neo4j, serves the API under gunicorn, runs every read and write
workload beside the PostgreSQL peer, grows the scale phase's graph from 200 to 2,000
instances, and writes a result for every operation the performance issues name. Tiny sizes:
this checks the harness, it measures nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import PHASES
from bench.postgres import Cluster, PostgresUnavailable

CHECKOUT = Path(__file__).resolve().parents[1]

DEEP = "a deep page (after row 108, by cursor) of the children"
SELECTOR = "selector page (100 of 600 labelled runs)"
MEASURED = [
    "ancestors of a 50-deep leaf", "descendants of the chain's root", "nested tree of the chain",
    "bulk import of 599 instances", "descendants of the GLOBAL", "flat tree of the GLOBAL",
    "nested tree of the GLOBAL", "lean flat tree of the GLOBAL (id, name, status, parent_id)",
    "one PROJECT's subtree (flat)",
    "filtered list page (100 CREATED ORCHESTRATIONs)",
    "descendants page (first 100 of the GLOBAL's)", "history page (100 of 120 events)",
    "descendants page 6 (after row 500, by cursor)", "peak RSS loading the whole tree (MiB)",
    "single create (validated, audited)",
    "single transition: start", "single transition: pause", "single transition: resume",
    "single transition: stop", "HTTP: flat tree of the GLOBAL",
    "HTTP: nested tree of the GLOBAL", "HTTP: descendants of the GLOBAL, first page (1,000)",
    "HTTP: GET /instances/{id}, 8 clients", "HTTP: lifecycle POST, 8 clients",
    "HTTP: filtered list page (100 CREATED ORCHESTRATIONs)",
    "HTTP: descendants page (first 100 of the GLOBAL's)",
    "HTTP: a committed event reaching an open event stream",
    "first page (100) of 120 children", DEEP,
    "events feed: 10,000 events", "cascade stop of 120 descendants",
    "online bulk import of 299 instances", "1 writer, pause/resume",
    "8 concurrent writers, each on its own PROJECT", "one heartbeat",
    "heartbeats, 8 threads", "heartbeats, 16 threads",
    SELECTOR,
]
MOVE = "move of a 60-instance subtree to another PROJECT"
"""The move phase: a run's subtree moved between two PROJECTs, beside the peer's UPDATE."""
MEASURED.append(MOVE)
FLEET = ["HTTP: GET /instances/{id}, 64 connections (wrk)",
         "HTTP: POST /instances/{id}/heartbeat, 64 connections (wrk)"]
"""The fleet phase's loads, from wrk: where wrk is not installed, the phase says so."""
if shutil.which("wrk"):
    MEASURED += FLEET
SCALE_OPS = ["get by id", "children page (100, by cursor)", "ancestors of a depth-4 node",
             "filtered list page (scope+status, 100, by cursor)", "single create",
             "single transition (pause/resume)"]
"""What the scale phase times at both sizes (200 and 2,000 at smoke size)."""
GROW = "scale: grow to 2,000 (bulk_create, 20,000 a batch)"
SCALE_RSS = "peak RSS of the benchmark process at 2,000 instances (MiB)"
MEASURED += [f"scale {size}: {op}" for size in ("200", "2,000") for op in SCALE_OPS]
MEASURED += [GROW, SCALE_RSS]
WITH_FLOOR = {"ancestors of a 50-deep leaf", "descendants of the chain's root",
              "bulk import of 599 instances", "descendants of the GLOBAL",
              "flat tree of the GLOBAL", "nested tree of the GLOBAL",
              "one PROJECT's subtree (flat)",
              "first page (100) of 120 children", DEEP,
              "events feed: 10,000 events",
              # every write has the bare driver doing the same change beside it
              "cascade stop of 120 descendants", "online bulk import of 299 instances",
              "single create (validated, audited)", "single transition: start",
              "single transition: pause", "single transition: resume",
              "single transition: stop", "1 writer, pause/resume",
              "8 concurrent writers, each on its own PROJECT", "one heartbeat",
              "heartbeats, 8 threads", "heartbeats, 16 threads"}
READS = {"ancestors of a 50-deep leaf", "descendants of the chain's root",
         "nested tree of the chain", "descendants of the GLOBAL", "flat tree of the GLOBAL",
         "nested tree of the GLOBAL", "one PROJECT's subtree (flat)",
         "filtered list page (100 CREATED ORCHESTRATIONs)",
         "descendants page (first 100 of the GLOBAL's)", "history page (100 of 120 events)",
         "first page (100) of 120 children", DEEP,
         "events feed: 10,000 events", SELECTOR}
"""Every read the library side times outside HTTP: each has a peer figure."""
PAGES = {"filtered list page (100 CREATED ORCHESTRATIONs)", SELECTOR,
         "descendants page (first 100 of the GLOBAL's)", "history page (100 of 120 events)",
         "first page (100) of 120 children"}
"""Full pages of 100 on both sides (the deep page has 12 rows left at smoke size)."""
WITH_PEER = READS | {"cascade stop of 120 descendants", "online bulk import of 299 instances",
             "single create (validated, audited)", "single transition: start",
             "single transition: pause", "single transition: resume", "single transition: stop",
             "1 writer, pause/resume", "8 concurrent writers, each on its own PROJECT",
             MOVE}
THROUGHPUTS = {"online bulk import of 299 instances", "1 writer, pause/resume",
               "8 concurrent writers, each on its own PROJECT", GROW,
               "heartbeats, 8 threads", "heartbeats, 16 threads", *FLEET}


def _postgres_missing() -> str | None:
    """Why the peer cannot run here, or None: then the benchmark must report its figures."""
    try:
        import psycopg  # noqa: F401

        Cluster()
    except (ImportError, PostgresUnavailable) as error:
        return str(error)
    return None


def test_the_benchmark_runs_every_phase_and_reports_every_operation(neo4j_source,
                                                                    clean_graph, tmp_path):
    settings = neo4j_source.settings
    # HOPPER_NEO4J_HOME only says where local servers keep their files (the store size)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HOPPER_") or k == "HOPPER_NEO4J_HOME"}
    env.update({"HOPPER_NEO4J_URI": settings.uri,
                "HOPPER_NEO4J_USER": settings.user or "",
                "HOPPER_NEO4J_PASSWORD": settings.password or "",
                "HOPPER_NEO4J_DATABASE": settings.database or ""})
    out = tmp_path / "smoke.json"
    every_phase = [arg for phase in PHASES for arg in ("--only", phase)]
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke", *every_phase,
                          "--out", str(out)],
                         cwd=CHECKOUT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]

    report = json.loads(out.read_text())
    results = {r["name"]: r for r in report["results"]}
    assert sorted(results) == sorted(MEASURED)
    for name, result in results.items():
        assert result["n"] >= 1 and result["p50_ms"] > 0, name
        assert (result["floor_p50_ms"] is not None) == (name in WITH_FLOOR), name
        assert (result["rate_per_s"] is not None) == (name in THROUGHPUTS), name
    missing = _postgres_missing()
    if missing is None:
        assert report["meta"]["peer"].startswith("PostgreSQL 15"), report["meta"]["peer"]
        for name, result in results.items():
            assert (result["peer_p50_ms"] is not None) == (name in WITH_PEER), name
            if name in WITH_PEER:
                assert result["ratio_to_peer"] > 0, name
                assert result["ratio_to_peer_of"] == ("rate" if name in THROUGHPUTS
                                                      else "p50"), name
        for name in READS:  # both sides read the same hierarchy: the same rows
            assert results[name]["peer_rows"] == results[name]["rows"], name
        for name in PAGES:
            assert results[name]["rows"] == 100, name
        rows = {line.split(" | ")[0].removeprefix("| "): line.split(" | ")[1]
                for line in out.with_suffix(".md").read_text().splitlines()
                if line.startswith("| ")}
        assert all(rows[name].endswith("x (p50)") for name in READS), rows  # leads the row
        writers = results["8 concurrent writers, each on its own PROJECT"]
        assert writers["peer_rate_per_s"] > 0 and writers["peer_ratio_to_one_writer"] > 0
    else:
        assert "PostgreSQL peer skipped" in run.stdout, run.stdout[-2000:]
        assert all(r["peer_p50_ms"] is None for r in results.values())
    assert results["8 concurrent writers, each on its own PROJECT"]["threads"] == 8
    assert results["8 concurrent writers, each on its own PROJECT"]["ratio_to_one_writer"] > 0
    for name in ("HTTP: GET /instances/{id}, 8 clients", "HTTP: lifecycle POST, 8 clients"):
        assert set(results[name]["statuses"]) == {"200"}, results[name]["statuses"]
    assert results["cascade stop of 120 descendants"]["changes"] == 240  # stop + archive
    if shutil.which("wrk"):
        beats = results[FLEET[1]]
        assert beats["errors"] == 0 and beats["rate_over_get"] > 0 and beats["rows"] > 0
    else:
        assert "fleet load skipped: wrk is not installed" in run.stdout
    assert report["meta"]["sizes"]["forest"] == 600
    table, scale_table = out.with_suffix(".md").read_text().split("\nScale phase: ")
    assert table.count("\n| ") == len(MEASURED) + 1
    _scale_phase_reports_both_sizes(results, scale_table)


def _scale_phase_reports_both_sizes(results, scale_table):
    """Each scale operation at 200 and at 2,000 instances, the second with its ratio to the
    first; the growth, the peak RSS and the store size; the side-by-side table."""
    for op in SCALE_OPS:
        small, large = results[f"scale 200: {op}"], results[f"scale 2,000: {op}"]
        assert large["p50_ms_at_200"] == pytest.approx(small["p50_ms"]), op
        assert large["ratio_to_small"] == pytest.approx(large["p50_ms"] / small["p50_ms"]), op
        assert f"\n| {op} | " in scale_table, op
    for op in SCALE_OPS[1], SCALE_OPS[3]:  # full pages at both sizes
        assert results[f"scale 200: {op}"]["rows"] == 100 == results[f"scale 2,000: {op}"]["rows"]
    assert results[GROW]["rows"] is None and results[GROW]["rate_per_s"] > 0
    store = results[SCALE_RSS]["store_mib"]
    assert store == "unknown" or store > 0, store
    assert "| peak RSS of the Python process | |" in scale_table
    assert "| store on disk" in scale_table
    assert scale_table.count("\n| ") == 1 + len(SCALE_OPS) + 3  # header; growth, RSS, store
