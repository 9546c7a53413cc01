"""``hopper-graph serve`` as a client meets it: connections kept alive, slow clients, dropped
streams, an unreachable Neo4j and the errors gunicorn answers itself.

Every test runs a real ``hopper-graph serve`` (gunicorn) process on a free port against the
test Neo4j (tests/api/serve_process.py) and talks to it over real sockets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import socket
import threading
import time
from urllib.parse import urlsplit

from tests.api.serve_process import HOST


# -- keep-alive -----------------------------------------------------------------------------
def test_an_idle_connection_stays_open_past_six_seconds(serve_process):
    served = serve_process()
    with served.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = _read_response(sock)
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(6)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        second = _read_response(sock)
        assert second.startswith(b"HTTP/1.1 200"), second


def test_a_client_reusing_its_connection_across_gaps_around_two_seconds_sees_no_error(
        serve_process):
    """100 requests, each on a connection left idle for 1.5 to 2.5 s before it (gunicorn's
    old keep-alive was 2 s, so about half the gaps straddle it). To keep the wall time near
    20 s, ten clients run at once, ten requests each, each on its own kept connection.
    http.client raises RemoteDisconnected (httpx's "Server disconnected without sending a
    response") when it reuses a connection the server has closed; it never retries, so
    every such close shows."""
    served = serve_process()
    clients, tries = 10, 10
    errors: list[BaseException] = []
    reused: list[bool] = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(HOST, served.port, timeout=10)
        try:
            sock = None
            for attempt in range(tries):
                conn.request("GET", "/health")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                reused.append(sock is None or conn.sock is sock)
                sock = conn.sock
                time.sleep(1.5 + ((index + attempt * 3) % 11) / 10)  # 1.5 ... 2.5 s
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(reused) == clients * tries and all(reused)  # one connection each, throughout


def _read_response(sock) -> bytes:
    """One whole response with a Content-Length body (b"" when the server closed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


# -- slow clients -----------------------------------------------------------------------------
def test_slow_senders_do_not_stall_health_or_reads(serve_process, tree):
    """32 connections (as many as serve's 2 workers have threads) each send a POST's headers
    with Content-Length: 100, then 8 bytes of the body, and stall. /health and a GET of an
    instance must still answer; the 5 s allowed is generous (the target is 1 s), a server
    whose threads wait for the bodies answers neither until the senders give up."""
    served = serve_process()
    instance = tree[1].id
    stalled = []
    try:
        for _ in range(32):
            sock = served.connect()
            sock.sendall(b"POST /api/v1/instances HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                         b'{"name":')
            stalled.append(sock)
        time.sleep(0.5)  # let the server take them all up
        for _ in range(10):  # each on a new connection: some land on each worker
            assert served.get("/health", timeout=5)[0] == 200
            status, _, body = served.get(f"/api/v1/instances/{instance}", timeout=5)
            assert status == 200, body
    finally:
        for sock in stalled:
            sock.close()


def test_requests_read_in_pieces_chunked_pipelined_or_expecting_continue_are_served(
        serve_process):
    """What the worker's request buffering must still take: a body that arrives in pieces,
    a chunked body, two requests sent back to back, and Expect: 100-continue (answered
    before the body is sent)."""
    served = serve_process()
    head = (b"POST /api/v1/instances HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n")
    body = b'{"name": "g", "scope": "GLOBAL"}'
    with served.connect() as sock:  # in pieces
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
        time.sleep(0.3)
        sock.sendall(body[5:])
        assert _read_response(sock).startswith(b"HTTP/1.1 201"), "in pieces"
    with served.connect() as sock:  # chunked: the GLOBAL exists now, so 409
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (len(body), body))
        time.sleep(0.3)
        sock.sendall(b"0\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 409"), "chunked"
    with served.connect() as sock:  # expecting 100 Continue
        sock.sendall(head + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        assert _read_response(sock).startswith(b"HTTP/1.1 409"), "100-continue"
    with served.connect() as sock:  # pipelined
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = b""
        while chunk := sock.recv(65536):  # until the server closes, after the second
            answers += chunk
        assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2, answers


# -- dropped streams --------------------------------------------------------------------------
def test_a_dropped_stream_frees_its_slot_within_a_second_of_the_close(serve_process):
    """One worker with 2 stream slots and a keep-alive every 30 s: both streams' clients go
    away, and new streams open at once, not when the server next writes to the dead ones.
    The test allows 5 s for a target of 1 s (a busy two-core machine), far below the 30 s
    keep-alive that used to be the first moment the server noticed."""
    served = serve_process("--workers", "1", "--threads", "4",
                           HOPPER_API_MAX_STREAMS="2", HOPPER_API_STREAM_HEARTBEAT="30")
    path = "/api/v1/events/stream"
    clients = [_open_stream(served) for _ in range(2)]
    assert served.get(path)[0] == 503  # the worker is full
    for sock in clients:
        sock.close()  # the clients are gone: no FIN reaches a thread that only waits
    closed = time.monotonic()
    reopened = []
    while len(reopened) < 2:
        assert time.monotonic() - closed < 5, f"slots still taken; reopened {len(reopened)}"
        sock = served.connect()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        if sock.recv(12).startswith(b"HTTP/1.1 200"):
            reopened.append(sock)
        else:
            sock.close()
            time.sleep(0.1)
    for sock in reopened:
        sock.close()


def _open_stream(served):
    sock = served.connect()
    sock.sendall(b"GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"retry:" not in answer:  # the stream is open
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return sock


# -- Neo4j unreachable --------------------------------------------------------------------------
class Proxy:
    """A TCP proxy on a free loopback port to ``target``; ``close`` stops it listening and
    cuts every connection, so the port refuses connections from then on: Neo4j gone, as
    the server sees it, without stopping the test Neo4j."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.closed:
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):  # wakes the accept (close alone does not)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


TIMEOUT = 4


def test_ready_and_reads_answer_503_in_time_while_neo4j_is_unreachable(
        serve_process, neo4j_source, tree):
    """serve reaches Neo4j through a proxy, which then closes: /ready answers 503 with the
    cause within a second (the test allows 3 s, a busy machine, still less than the
    HOPPER_NEO4J_TIMEOUT of 4 s that it used to take at least), and a read 503
    database-unavailable within that timeout and a backoff (the test allows
    2 x timeout + 2 s, as test_outage.py does)."""
    settings = neo4j_source.settings
    target = urlsplit(settings.uri)
    proxy = Proxy((target.hostname, target.port))
    try:
        served = serve_process(
            settings=dataclasses.replace(settings, uri=f"bolt://{HOST}:{proxy.port}"),
            HOPPER_NEO4J_TIMEOUT=str(TIMEOUT))
        assert served.get("/ready")[0] == 200
        instance = f"/api/v1/instances/{tree[1].id}"
        assert served.get(instance)[0] == 200
    finally:
        proxy.close()
    for _ in range(3):
        started = time.monotonic()
        status, headers, body = served.get("/ready", timeout=30)
        assert time.monotonic() - started < 3
        assert status == 503, body
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["code"] == "database-unavailable"
        assert problem["reason"] == "connection-refused"
    started = time.monotonic()
    status, headers, body = served.get(instance, timeout=30)
    assert time.monotonic() - started < 2 * TIMEOUT + 2
    assert status == 503, body
    assert json.loads(body)["code"] == "database-unavailable"
    assert headers["retry-after"].isdigit()


# -- gunicorn's own errors ------------------------------------------------------------------------
def test_requests_gunicorn_refuses_get_problem_documents(serve_process):
    """What gunicorn answers before the app sees the request: a header too large, a header
    that is not valid, a request line too long."""
    served = serve_process()
    cases = [
        (b"GET /api/v1/instances HTTP/1.1\r\nHost: x\r\nX-Actor: " + b"a" * 10_000
         + b"\r\n\r\n", 431, "header-too-large"),
        (b"GET /api/v1/instances HTTP/1.1\r\nHost: x\r\nIf-Match: \x01\r\n\r\n", 400,
         "bad-request"),
        (b"GET /api/v1/instances?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
         "uri-too-long"),
    ]
    for request, status, code in cases:
        with served.connect() as sock:
            sock.sendall(request)
            answer = _read_response(sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        assert b"\r\nContent-Type: application/problem+json\r\n" in head + b"\r\n", head
        problem = json.loads(body)
        assert problem["status"] == status
        assert problem["code"] == code
        assert problem["type"] == f"urn:hopper-graph:problem:{code}"
        assert problem["title"] and problem["detail"]
        assert b"<html" not in body
