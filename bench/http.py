"""The HTTP part of the benchmark: the API under gunicorn on loopback, concurrent clients."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.measure import Result, percentile

if TYPE_CHECKING:
    from bench.__main__ import Bench
    from bench.datasets import Forest

CLIENTS = 8


def run(bench: Bench, global_id: str, forest: Forest) -> None:
    port = _free_port()
    server = _start_server(bench, port)
    try:
        _trees(bench, port, global_id)
        _get_throughput(bench, port, forest.orchestrations[:500])
        _lifecycle_latency(bench, port, forest)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _start_server(bench: Bench, port: int) -> subprocess.Popen[bytes]:
    from bench.__main__ import _settings_of

    env = dict(os.environ, HOPPER_NEO4J_URI=_settings_of(bench.driver),
               HOPPER_APPLY_SCHEMA="false")
    env.pop("HOPPER_API_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4",
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
