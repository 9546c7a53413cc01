"""/metrics of a real `hopper-graph serve` with 2 gunicorn workers: whichever worker answers
a scrape, it counts the requests both served, and a dead worker's counts stay.

Which worker served a request is read from the JSON access log (HOPPER_LOG_FORMAT=json):
each line carries the worker's pid and the request's X-Request-ID.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from collections import Counter

from tests.api.test_metrics import parse, value
from tests.serving import Server, served

URL = "/api/v1/instances"
ONE = "/api/v1/instances/<uuid:instance_id>"
BATCH = 40
"""Requests sent at a time, each on a new connection, until both workers served some."""


def served_by(server: Server, prefix: str) -> Counter[int]:
    """How many of the requests whose id starts with ``prefix`` each worker pid served."""
    pids: Counter[int] = Counter()
    for line in server.stdout.read_text().splitlines():
        record = json.loads(line)
        if str(record.get("request_id", "")).startswith(prefix):
            pids[record["process"]] += 1
    return pids


def scrape(server: Server) -> dict:
    status, headers, body = server.call("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    return parse(body.decode())


def wait_for_log(server: Server, prefix: str, count: int) -> Counter[int]:
    """``served_by`` once ``count`` access lines are written (or after 10 s)."""
    deadline = time.monotonic() + 10
    pids = served_by(server, prefix)
    while sum(pids.values()) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = served_by(server, prefix)
    return pids


def eventually(server: Server, name: str, expected: float) -> dict:
    """A scrape where ``name`` is ``expected`` (within 10 s), to assert on."""
    deadline = time.monotonic() + 10
    samples = scrape(server)
    while value(samples, name) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(server)
    return samples


def test_a_scrape_sums_both_workers_and_keeps_a_dead_ones_counts(neo4j_source, clean_graph,
                                                                 tmp_path):
    env = {"HOPPER_LOG_FORMAT": "json", "HOPPER_API_STREAM_HEARTBEAT": "0.5"}
    with served(neo4j_source, tmp_path, workers=2, threads=4, env=env) as server:
        body = json.dumps({"name": "global", "scope": "GLOBAL"}).encode()
        status, _, text = server.call("POST", URL, {"Content-Type": "application/json"}, body)
        assert status == 201
        gid = json.loads(text)["id"]
        sent = 0
        while sent < 10 * BATCH:
            for _ in range(BATCH):
                status, headers, _ = server.call("GET", f"{URL}/{gid}",
                                                 {"X-Request-ID": f"load-{sent}"})
                assert status == 200 and headers["x-request-id"] == f"load-{sent}"
                sent += 1
            pids = wait_for_log(server, "load-", sent)
            if len(pids) == 2:
                break
        assert len(pids) == 2 and sum(pids.values()) == sent, pids  # both workers served

        stream = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        stream.request("GET", "/api/v1/events/stream", headers={"Accept": "text/event-stream"})
        assert stream.getresponse().status == 200
        for _ in range(6):  # whichever worker answers, it reports both workers' counts
            samples = scrape(server)
            got = value(samples, "hopper_http_requests_total", method="GET", route=ONE,
                        status="200")
            assert got == sent, (got, sent, pids)
            assert value(samples, "hopper_http_request_duration_seconds_count",
                         method="GET", route=ONE) == sent
            assert value(samples, "hopper_writes_total", kind="create", outcome="ok") == 1
            assert value(samples, "hopper_event_streams_open") == 1
            assert ("hopper_events_pending", frozenset()) in samples
        stream.close()  # noticed at the next keep-alive, half a second later
        assert value(eventually(server, "hopper_event_streams_open", 0),
                     "hopper_event_streams_open") == 0

        victim = max(pids, key=lambda pid: pids[pid])
        os.kill(victim, signal.SIGKILL)  # gunicorn starts another; child_exit marks it dead
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{victim}") and time.monotonic() < deadline:
            time.sleep(0.2)
        samples = scrape(server)
        got = value(samples, "hopper_http_requests_total", method="GET", route=ONE,
                    status="200")
        assert got == sent  # the dead worker's requests still count
