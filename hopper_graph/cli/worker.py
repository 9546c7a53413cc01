"""The gunicorn worker ``serve`` runs: gunicorn's gthread worker that hands a connection to
a thread only once its whole request has arrived, and answers gunicorn's own errors as
problem+json.

**Whole requests first.** gthread reads a request in the thread that runs it: a client that
sends its headers and then stalls in the body holds that thread until it gives up, and a
few dozen such clients (slow networks, or on purpose) hold every thread of every worker,
so not even ``/health`` answers. Here the worker's event loop reads each request,
without blocking, as its bytes arrive, like nginx's request buffering: the head, then a
``Content-Length`` body or chunked body, up to ``BUFFER_LIMIT`` bytes. Only a complete
request goes to the thread pool, so a thread never waits on a client's upload. A request
with nothing new for ``READ_TIMEOUT`` seconds is dropped. ``Expect: 100-continue`` is
answered here (the client would wait for it before sending its body). What is not buffered
goes to a thread as before: TLS and HTTP/2 connections (``serve`` offers neither) and a
body larger than ``BUFFER_LIMIT`` (the app refuses bodies above ``HOPPER_MAX_CONTENT_LENGTH``
without reading them).

**Errors as problems.** gunicorn answers a request it cannot parse (a header too large, a
request line too long, a bad header) itself, as an HTML page; here it is an RFC 9457
problem document like every other error of the API (docs/api.md, "Errors").
"""

from __future__ import annotations

import contextlib
import html
import json
import selectors
import time
from functools import partial
from typing import Any

from gunicorn import http, util
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import ThreadWorker

BUFFER_LIMIT = 8 * 1024 * 1024
"""Bytes of one request the event loop buffers at most; a larger one is read by its thread
(which refuses a body above HOPPER_MAX_CONTENT_LENGTH without reading it)."""
READ_TIMEOUT = 30.0
"""Seconds a request being buffered may go without a new byte before it is dropped."""
_READ_SIZE = 65536
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Incomplete(Exception):
    """The request has not all arrived yet."""


class _Unbufferable(Exception):
    """A request to leave to the thread: malformed (gunicorn parses and refuses it there),
    or larger than BUFFER_LIMIT."""


def _request_end(data: bytes | bytearray) -> int:
    """Where the first request in ``data`` ends. Raises _Incomplete while it has not all
    arrived, _Unbufferable when it is malformed or larger than BUFFER_LIMIT."""
    body, length, chunked = _head(data)
    if chunked:
        return _chunked_end(data, body)
    end = body + length
    if end > BUFFER_LIMIT:
        raise _Unbufferable
    if len(data) < end:
        raise _Incomplete
    return end


def _head(data: bytes | bytearray) -> tuple[int, int, bool]:
    """Where the body of the first request in ``data`` starts, its Content-Length (0 when
    none) and whether it is chunked."""
    start = 0
    while data.startswith(b"\r\n", start):  # empty lines before a request are allowed
        start += 2
    head_end = data.find(b"\r\n\r\n", start)
    if head_end < 0:
        if len(data) > BUFFER_LIMIT:
            raise _Unbufferable
        raise _Incomplete
    length: int | None = None
    chunked = False
    for line in bytes(data[start:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if length is not None or not value.isdigit():
                raise _Unbufferable
            length = int(value)
        elif name == b"transfer-encoding":
            if value != b"chunked" or chunked:
                raise _Unbufferable
            chunked = True
    if chunked and length is not None:
        raise _Unbufferable
    return head_end + 4, length or 0, chunked


def _expects_continue(data: bytes | bytearray) -> tuple[int, int] | None:
    """Where the ``Expect: 100-continue`` line of a whole head is (start, end), if any."""
    head_end = data.find(b"\r\n\r\n")
    start = data.lower().find(b"\r\nexpect:", 0, head_end + 2)
    if start < 0:
        return None
    end = data.find(b"\r\n", start + 2)
    if data[start + 2:end].partition(b":")[2].strip().lower() != b"100-continue":
        return None
    return start, end


def _chunked_end(data: bytes | bytearray, at: int) -> int:
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            raise _Incomplete
        try:
            size = int(bytes(data[at:line_end]).split(b";")[0].strip(), 16)
        except ValueError:
            raise _Unbufferable from None
        at = line_end + 2
        if size == 0:  # then trailer lines, and an empty line
            if data.startswith(b"\r\n", at):
                return at + 2
            trailers_end = data.find(b"\r\n\r\n", at)
            if trailers_end < 0:
                raise _Incomplete
            return trailers_end + 4
        at += size + 2
        if at > BUFFER_LIMIT:
            raise _Unbufferable


class _Buffering:
    """A connection whose request the event loop is reading."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.deadline = time.monotonic() + READ_TIMEOUT
        self.continued = False


class HopperWorker(ThreadWorker):
    """gthread, with requests buffered by the event loop and errors as problem+json."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffering: dict[Any, _Buffering] = {}

    # -- whole requests first ---------------------------------------------------------------
    def enqueue_req(self, conn: Any) -> None:
        if (getattr(conn, "hopper_whole", False) or self.cfg.is_ssl or conn.is_http2
                or (conn.parser is None
                    and negotiation.prior_knowledge_allowed(self.cfg, conn.client))):
            conn.hopper_whole = False
            super().enqueue_req(conn)
            return
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        self.buffering[conn] = _Buffering(held)
        conn.sock.setblocking(False)
        if not self._read_more(conn):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _client: Any) -> None:
        if not self._read_more(conn):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)

    def _read_more(self, conn: Any) -> bool:
        """Read what has arrived; hand the request on when it is whole, or drop the
        connection when the client closed it. Whether to keep waiting."""
        state = self.buffering[conn]
        closed = False
        try:
            while True:
                chunk = conn.sock.recv(_READ_SIZE)
                if not chunk:
                    closed = True
                    break
                state.data += chunk
                state.deadline = time.monotonic() + READ_TIMEOUT
                if len(chunk) < _READ_SIZE:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            closed = True
        try:
            _request_end(state.data)
        except _Incomplete:
            if closed:
                self._drop(conn)
                return False
            if not state.continued:
                self._answer_continue(conn, state)
            return True
        except _Unbufferable:
            pass
        if closed and not state.data:
            self._drop(conn)
            return False
        self._hand_on(conn)
        return False

    def _answer_continue(self, conn: Any, state: _Buffering) -> None:
        """Tell a client that waits for it to send its body (``Expect: 100-continue``),
        and take the expectation out of the request: the thread must not answer it again."""
        try:
            _head(state.data)
        except (_Incomplete, _Unbufferable):
            return  # the head has not all arrived
        state.continued = True
        found = _expects_continue(state.data)
        if found is None:
            return
        del state.data[found[0]:found[1]]
        with contextlib.suppress(OSError):
            conn.sock.send(_CONTINUE)

    def _hand_on(self, conn: Any) -> None:
        state = self.buffering.pop(conn)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(state.data))
        conn.data_ready = True
        conn.hopper_whole = True
        self.enqueue_req(conn)

    def _drop(self, conn: Any) -> None:
        self.buffering.pop(conn, None)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, state in list(self.buffering.items()):
            if state.deadline <= now or not self.alive:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self.poller.unregister(conn.sock)
                self._drop(conn)

    # -- errors as problems -----------------------------------------------------------------
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's answer, status and message kept, as a problem document."""
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)
        status, _, reason = captured.status_line()
        if not status.isdigit():
            return
        detail = {
            414: f"The request line (method, path and query) is longer than the "
                 f"{self.cfg.limit_request_line} bytes the server accepts.",
            431: f"The request's headers are larger than the server accepts: at most "
                 f"{self.cfg.limit_request_fields} headers of {self.cfg.limit_request_field_size}"
                 f" bytes each.",
        }.get(int(status))
        with contextlib.suppress(Exception):
            util.write_nonblock(client, problem_response(int(status), reason,
                                                         detail or captured.message()))


class _Captured:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data

    def send(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def setblocking(self, flag: bool) -> None:
        pass

    def gettimeout(self) -> float | None:
        return None

    def status_line(self) -> tuple[str, str, str]:
        first = self.data.split(b"\r\n", 1)[0].decode("latin-1")
        _, _, rest = first.partition(" ")
        return rest.partition(" ")

    def message(self) -> str:
        """The page's text after its heading (gunicorn's message), unescaped."""
        body = self.data.partition(b"\r\n\r\n")[2].decode("latin-1")
        text = body.split("</h1>", 1)[-1].split("</body>", 1)[0].strip()
        return html.unescape(text)


PROBLEMS = {400: ("bad-request", "Bad request"), 403: ("forbidden", "Forbidden"),
            414: ("uri-too-long", "URI too long"),
            417: ("expectation-failed", "Expectation failed"),
            431: ("header-too-large", "Request headers too large"),
            500: ("internal-error", "Internal error"),
            501: ("not-implemented", "Not implemented")}
"""The problem ``code`` and title of each status gunicorn answers by itself: the API's own
(api/errors.py's TITLES; a test holds them equal)."""


def problem_response(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP response carrying an RFC 9457 problem, connection closed after it."""
    code, title = PROBLEMS.get(status) or PROBLEMS[400 if status < 500 else 500]
    if status >= 500 or not message:
        detail = "The server could not answer the request."
    elif message.startswith("The "):
        detail = message
    else:
        detail = f"The server could not read the request: {message}"
    body = json.dumps({"type": f"urn:hopper-graph:problem:{code}", "title": title,
                       "status": status, "detail": detail, "code": code}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


__all__ = ["PROBLEMS", "HopperWorker", "problem_response"]
