"""The library's Prometheus metrics: Neo4j transactions, writes, group-commit batches.

Nothing is measured until :func:`enable` is called (the API does, unless
``HOPPER_METRICS=0``); until then every hook returns at once. ``prometheus_client`` is
imported only by :func:`enable`, so a process that never enables metrics never loads it,
and a server that forks workers can set ``PROMETHEUS_MULTIPROC_DIR`` before the first
import (prometheus_client chooses its multi-process storage when it is imported).

==============================================  =========  ==============================
metric                                          type       labels
==============================================  =========  ==============================
hopper_neo4j_transactions_total                 counter    access (read/write), outcome
hopper_neo4j_transaction_duration_seconds       histogram  access
hopper_writes_total                             counter    kind, outcome
hopper_group_commit_batch_size                  histogram  kind
==============================================  =========  ==============================

A Neo4j transaction is one session's work: an auto-commit statement (one round trip) or a
managed transaction (two), each retry counted again. A write's ``kind`` is the manager's
operation (``create``, ``update``, ``delete``, ``start``, ..., ``heartbeat``, ``purge``);
its ``outcome`` is ``ok`` or the code of the library error that refused it
(``invalid-transition``, ``not-found``, ...) or ``error``. No label ever holds an id.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""Group commit takes at most 256 requests a batch (``groupcommit.MAX_BATCH``)."""
TRANSACTION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                       2.5, 5.0, 10.0)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.transactions = Counter(
            "hopper_neo4j_transactions", "Neo4j transactions (auto-commit or managed).",
            ["access", "outcome"])
        self.transaction_seconds = Histogram(
            "hopper_neo4j_transaction_duration_seconds",
            "Time from opening a Neo4j session to closing it.", ["access"],
            buckets=TRANSACTION_BUCKETS)
        self.writes = Counter("hopper_writes", "Writes by kind and outcome.",
                              ["kind", "outcome"])
        self.batch_size = Histogram(
            "hopper_group_commit_batch_size", "Requests per group-commit batch.", ["kind"],
            buckets=BATCH_BUCKETS)


_metrics: _Metrics | None = None


def enable() -> None:
    """Start measuring in this process (idempotent)."""
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()


def enabled() -> bool:
    return _metrics is not None


@contextlib.contextmanager
def transaction(write: bool) -> Iterator[None]:
    """Count and time the Neo4j transaction run inside the block."""
    metrics = _metrics
    if metrics is None:
        yield
        return
    access, outcome = ("write" if write else "read"), "error"
    start = time.perf_counter()
    try:
        yield
        outcome = "ok"
    finally:
        metrics.transaction_seconds.labels(access).observe(time.perf_counter() - start)
        metrics.transactions.labels(access, outcome).inc()


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else "error"


def write(kind: str | Callable[..., str]) -> Callable[[F], F]:
    """Count each call of the decorated write by ``kind`` (or ``kind(*args, **kwargs)``)
    and outcome."""
    def decorator(func: F) -> F:
        @functools.wraps(func)
        def counted(*args: Any, **kwargs: Any) -> Any:
            metrics = _metrics
            if metrics is None:
                return func(*args, **kwargs)
            name = kind if isinstance(kind, str) else kind(*args, **kwargs)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                metrics.writes.labels(name, outcome_of(exc)).inc()
                raise
            metrics.writes.labels(name, "ok").inc()
            return result
        return counted  # type: ignore[return-value]
    return decorator


def batch(kind: str, size: int) -> None:
    """One group-commit batch of ``size`` requests ran."""
    if _metrics is not None:
        _metrics.batch_size.labels(kind).observe(size)
