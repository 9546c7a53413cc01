"""Threads released together, for the race tests: each waits at one barrier, so they
reach the server as close to at once as Python allows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from hopper_graph import HopperGraphError

THREADS = 12
"""How many threads a race releases unless told."""


def run_threads(n: int, target: Callable[[int, list[Any]], None]) -> list[Any]:
    """Run target(i, out) in n threads released together; everything they appended to
    their out lists, thread by thread."""
    barrier = threading.Barrier(n)
    results: list[list[Any]] = [[] for _ in range(n)]

    def worker(i: int) -> None:
        barrier.wait()
        target(i, results[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for rs in results for r in rs]


def race(fn: Callable[[int], Any], n: int = THREADS) -> list[Any]:
    """Run fn(i) in n threads released together; each outcome, a value or the library's
    error it raised (any other error fails the test in its thread)."""
    def attempt(i: int, out: list[Any]) -> None:
        try:
            out.append(fn(i))
        except HopperGraphError as exc:
            out.append(exc)

    return run_threads(n, attempt)
