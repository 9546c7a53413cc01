"""serve's worker decides when a request has all arrived (hopper_graph/cli/worker.py): the
rules on bytes, without a server. tests/api/test_serve.py runs them against real sockets."""

from __future__ import annotations

import pytest

from hopper_graph.cli import worker
from hopper_graph.cli.worker import _expects_continue, _Incomplete, _request_end, _Unbufferable

GET = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
CHUNKED = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(("data", "end"), [
    (GET, len(GET)),
    (GET + GET, len(GET)),  # pipelined: the first one ends where the second starts
    (b"\r\n" + GET, len(GET) + 2),  # an empty line before a request is allowed
    (POST + b"hello", len(POST) + 5),
    (POST + b"helloGET", len(POST) + 5),
    (CHUNKED + b"5\r\nhello\r\n0\r\n\r\n", len(CHUNKED) + 15),
    (CHUNKED + b"5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", len(CHUNKED) + 29),
])
def test_a_whole_request_ends_where_its_body_does(data, end):
    assert _request_end(data) == end


@pytest.mark.parametrize("data", [
    b"GET /health HTTP/1.1\r\nHost: x\r\n",
    POST,
    POST + b"hell",
    CHUNKED,
    CHUNKED + b"5\r\nhel",
    CHUNKED + b"5\r\nhello\r\n0\r\n",
    CHUNKED + b"5\r\nhello\r\n0\r\nX-T: 1\r\n",
])
def test_a_request_not_all_arrived_is_incomplete(data):
    with pytest.raises(_Incomplete):
        _request_end(data)


@pytest.mark.parametrize("data", [
    b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /x HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    CHUNKED + b"zz\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (worker.BUFFER_LIMIT + 1),
])
def test_a_malformed_or_huge_request_is_left_to_the_thread(data):
    """gunicorn, in the thread, refuses the malformed ones; the app refuses a body too
    large from its Content-Length, without reading it."""
    with pytest.raises(_Unbufferable):
        _request_end(data)


def test_a_head_that_never_ends_is_left_to_the_thread_past_the_limit(monkeypatch):
    monkeypatch.setattr(worker, "BUFFER_LIMIT", 100)
    with pytest.raises(_Incomplete):
        _request_end(b"GET / HTTP/1.1\r\nX: " + b"a" * 50)
    with pytest.raises(_Unbufferable):
        _request_end(b"GET / HTTP/1.1\r\nX: " + b"a" * 200)


def test_expect_100_continue_is_found_in_the_head_only():
    head = b"POST /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n"
    start, end = _expects_continue(head)  # type: ignore[misc]
    assert head[start:end] == b"\r\nExpect: 100-Continue"
    assert _expects_continue(POST + b"\r\nExpect: 100-continue") is None


def test_a_refusal_is_a_problem_document():
    answer = worker.problem_response(431, "Request Header Fields Too Large",
                                     "The request's headers are too large.")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Content-Type: application/problem+json" in head
    assert b"Content-Length: %d" % len(body) in head
    assert body.startswith(b'{"type": "urn:hopper-graph:problem:header-too-large"')
