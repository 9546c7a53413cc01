"""The HTTP part of the benchmark: the API under gunicorn on loopback, concurrent clients."""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from bench.measure import Result, percentile
from bench.server import bench_uri
from hopper_graph.cli.server import DEFAULT_THREADS, DEFAULT_WORKERS
from hopper_graph.manager import InstanceManager

if TYPE_CHECKING:
    from bench.__main__ import Sizes
    from bench.datasets import Forest


class Bench(Protocol):
    """What the HTTP part needs of the benchmark: its manager, sizes and report."""

    manager: InstanceManager
    sizes: Sizes

    def add(self, result: Result, floor: Result | None = None,
            peer: Result | None = None) -> Result: ...

CLIENTS = 8


def run(bench: Bench, global_id: str, forest: Forest) -> None:
    port = _free_port()
    server = _start_server(bench, port)
    try:
        _trees(bench, port, global_id)
        _pages(bench, port, global_id)
        _get_throughput(bench, port, forest.orchestrations[:500])
        _lifecycle_latency(bench, port, forest)
        _stream_latency(bench, port, forest)
    finally:
        _stop(server)


def _start_server(bench: Bench, port: int, threads: int = DEFAULT_THREADS
                  ) -> subprocess.Popen[bytes]:
    """The API under gunicorn as ``hopper-graph serve`` runs it (its workers and threads)."""
    env = dict(os.environ, HOPPER_NEO4J_URI=bench_uri(), HOPPER_APPLY_SCHEMA="false")
    env.pop("HOPPER_API_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(DEFAULT_WORKERS),
         "--threads", str(threads),
         "--config", "python:hopper_graph.cli.gunicorn_config",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "api:create_app()"],
        env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _get(port, "/health")[0] == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("the API did not come up under gunicorn")


STOP_SECONDS = 15
"""How long a graceful stop of the API may take before the benchmark kills it."""


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the API as Ctrl-C would (SIGTERM to its process group). A stop that overruns is
    reported and the server killed: a figure already taken stays good, and a stuck stop
    must not lose the run's report."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"warning: the API had not stopped {STOP_SECONDS} s after SIGTERM; killed it",
              file=sys.stderr)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _get(port: int, path: str, conn: http.client.HTTPConnection | None = None
         ) -> tuple[int, bytes]:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def _timed_http(name: str, fn: Callable[[], Any], repeat: int, target: str | None) -> Result:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Result(name, samples, target=target)


def _trees(bench: Bench, port: int, global_id: str) -> None:
    def fetch(fmt: str) -> Callable[[], None]:
        def go() -> None:
            status, body = _get(port, f"/api/v1/instances/{global_id}/tree{fmt}")
            assert status == 200, (status, body[:200])
        return go
    flat = bench.add(_timed_http("HTTP: flat tree of the GLOBAL", fetch("?format=flat"), 3,
                                 "<= 2.5 s"))
    nested = bench.add(_timed_http("HTTP: nested tree of the GLOBAL", fetch(""), 3, None))
    nested.extra["ratio_to_flat"] = nested.p50 / flat.p50

    def descendants() -> None:  # a page is at most 1,000: the API has no unpaged form
        status, body = _get(port, f"/api/v1/instances/{global_id}/descendants?limit=1000")
        assert status == 200, (status, body[:200])
    bench.add(_timed_http("HTTP: descendants of the GLOBAL, first page (1,000)",
                          descendants, 10, None))


def _pages(bench: Bench, port: int, global_id: str) -> None:
    """The forest phase's first pages by cursor, over HTTP, beside the library's figure for
    the same page (timed earlier in the phase): what the API adds to a paged read."""
    pages = [("filtered list page (100 CREATED ORCHESTRATIONs)", 20,
              "/api/v1/instances?scope=ORCHESTRATION&status=CREATED&limit=100&after="),
             ("descendants page (first 100 of the GLOBAL's)", 3,
              f"/api/v1/instances/{global_id}/descendants?limit=100&after=")]
    library = {r.name: r for r in bench.results}
    for name, repeat, path in pages:
        def fetch(path: str = path) -> None:
            status, body = _get(port, path)
            assert status == 200, (status, body[:200])
        result = bench.add(_timed_http(f"HTTP: {name}", fetch, repeat, None))
        if name in library:
            result.extra["library_p50_ms"] = library[name].p50 * 1e3
            result.extra["ratio_to_library"] = result.p50 / library[name].p50


def _load(port: int, clients: int, duration: float,
          request: Callable[[http.client.HTTPConnection, int], int]) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, codes, i = [], {}, 0
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            status = request(conn, index * 100_000 + i)
            mine.append(time.perf_counter() - start)
            codes[status] = codes.get(status, 0) + 1
            i += 1
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "statuses": statuses,
            "rps": len(latencies) / duration}


def _get_throughput(bench: Bench, port: int, ids: list[str]) -> None:
    def request(conn: http.client.HTTPConnection, i: int) -> int:
        return _get(port, f"/api/v1/instances/{ids[i % len(ids)]}", conn)[0]
    load = _load(port, CLIENTS, bench.sizes.http_seconds, request)
    result = Result(f"HTTP: GET /instances/{{id}}, {CLIENTS} clients", load["latencies"],
                    target=">= 500 req/s, p99 <= 50 ms",
                    extra={"requests_per_s": load["rps"],
                           "p99_ms": percentile(load["latencies"], 99) * 1e3,
                           "statuses": load["statuses"]})
    bench.add(result)


def _lifecycle_latency(bench: Bench, port: int, forest: Forest) -> None:
    """Each client toggles pause/resume on its own ACTIVE instance, concurrently."""
    manager = bench.manager
    project = forest.projects[3]
    manager.start(forest.global_id)  # the forest is imported CREATED; runs need it ACTIVE
    manager.start(project)
    mine = []
    for i in range(CLIENTS):
        run = manager.create(name=f"http-toggle-{i}", scope="ORCHESTRATION", parent_id=project,
                             instance_type="PERSISTENT")
        manager.start(run.id)
        mine.append(run.id)
    paused = [False] * CLIENTS

    def request(conn: http.client.HTTPConnection, i: int) -> int:
        client = i // 100_000
        event = "resume" if paused[client] else "pause"
        conn.request("POST", f"/api/v1/instances/{mine[client]}/{event}", body=json.dumps({}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            paused[client] = not paused[client]
        return response.status

    load = _load(port, CLIENTS, bench.sizes.http_seconds / 2, request)
    bench.add(Result(f"HTTP: lifecycle POST, {CLIENTS} clients", load["latencies"],
                     extra={"requests_per_s": load["rps"],
                            "p99_ms": percentile(load["latencies"], 99) * 1e3,
                            "statuses": load["statuses"]}))


STREAM_EVENTS = 50
"""Events timed from commit to their arrival on an open event stream."""


def _stream_latency(bench: Bench, port: int, forest: Forest) -> None:
    """How long a committed event takes to reach an open ``/events/stream``: one change at
    a time through the library, each timed from its commit to its line on the stream."""
    manager = bench.manager
    run = manager.create(name="http-stream-probe", scope="ORCHESTRATION",
                         parent_id=forest.projects[3], instance_type="PERSISTENT")
    manager.start(run.id)
    after = manager.feed.head()  # only what happens from now on
    arrivals = _stream_reader(port, f"/api/v1/events/stream?subtree={run.id}&after={after}")
    samples, paused = [], False
    for _ in range(STREAM_EVENTS):
        committed = time.perf_counter()
        manager.transition(run.id, "resume" if paused else "pause")
        paused = not paused
        samples.append(arrivals.get(timeout=30) - committed)
        time.sleep(0.02)  # apart, so each is timed alone
    bench.add(Result("HTTP: a committed event reaching an open event stream", samples,
                     target="<= 200 ms"))


def _stream_reader(port: int, path: str) -> queue.Queue[float]:
    """Opens the stream and, in a daemon thread, puts the arrival time of each event."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers={"Accept": "text/event-stream"})
    response = conn.getresponse()
    assert response.status == 200, response.status
    arrivals: queue.Queue[float] = queue.Queue()

    def read() -> None:
        for line in response:
            if line.startswith(b"data:"):
                arrivals.put(time.perf_counter())
    threading.Thread(target=read, daemon=True).start()
    return arrivals


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FLEET_CONNECTIONS = 64
"""Connections of the fleet load: a heartbeat against a read, each from wrk."""

WRK_SCRIPT = """
local ids, method, suffix = {}, os.getenv("WRK_METHOD"), os.getenv("WRK_SUFFIX")
for line in io.lines(os.getenv("WRK_IDS")) do ids[#ids + 1] = line end
local counter, i = 0, 0
function setup(thread) thread:set("offset", counter * 7919); counter = counter + 1 end
function init(args) i = offset or 0 end
function request()
  i = i + 1
  local path = "/api/v1/instances/" .. ids[(i % #ids) + 1] .. suffix
  if method == "POST" then
    return wrk.format("POST", path, {["Content-Type"] = "application/json"}, "{}")
  end
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def fleet(bench: Bench, ids: list[str], threads: int = DEFAULT_THREADS) -> None:
    """A fleet's heartbeats against reads of single instances, each from wrk with
    FLEET_CONNECTIONS connections, against the API as ``serve`` runs it: the reads first,
    then the heartbeats, then the reads again (their mean is the yardstick)."""
    if shutil.which("wrk") is None:
        print("fleet load skipped: wrk is not installed (apt-get install wrk)", flush=True)
        return
    port = _free_port()
    server = _start_server(bench, port, threads)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as listed, \
                tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            listed.write("\n".join(ids))
            script.write(WRK_SCRIPT)
            listed.flush()
            script.flush()
            seconds = bench.sizes.http_seconds

            def load(method: str, suffix: str) -> Result:
                return _wrk(port, seconds, script.name, listed.name, method, suffix)
            load("GET", "")  # warm-up: connections, plans, the workers' first requests
            reads = [load("GET", "")]
            beats = load("POST", "/heartbeat")
            reads.append(load("GET", ""))
    finally:
        _stop(server)
    read = reads[0] if reads[0].rate and reads[1].rate and reads[0].rate < reads[1].rate \
        else reads[1]
    served = "" if threads == DEFAULT_THREADS else f", {threads} threads"
    read.name = f"HTTP: GET /instances/{{id}}, {FLEET_CONNECTIONS} connections (wrk){served}"
    beats.name = (f"HTTP: POST /instances/{{id}}/heartbeat, {FLEET_CONNECTIONS} connections "
                  f"(wrk){served}")
    beats.target = ">= the GET rate, p99 <= 50 ms"
    beats.extra.update(threads_per_worker=threads, workers=DEFAULT_WORKERS)
    assert beats.rate and read.rate
    beats.extra["rate_over_get"] = beats.rate / read.rate
    bench.add(read)
    bench.add(beats)


def _wrk(port: int, seconds: float, script: str, ids: str, method: str, suffix: str
         ) -> Result:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{FLEET_CONNECTIONS}", f"-d{max(1, round(seconds))}s", "-s", script,
         f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True,
        env=dict(os.environ, WRK_IDS=ids, WRK_METHOD=method, WRK_SUFFIX=suffix))
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    requests, micros, p50, p99, worst, errors = (int(x) for x in line.split()[1:])
    # wrk reports percentiles, not samples: a hundred stand-ins that give back its p50,
    # p99 and max (the report reads p50, p95, p99 and max off the samples)
    samples = [p50 / 1e6] * 98 + [p99 / 1e6, worst / 1e6]
    result = Result(f"{method} {suffix}", samples, rows=requests,
                    rate=requests / (micros / 1e6))
    result.extra.update(p99_ms=p99 / 1e3, errors=errors)
    if errors:
        raise RuntimeError(f"wrk saw {errors} failed requests ({method} {suffix})")
    return result
