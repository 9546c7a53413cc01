"""Timing helpers: repetitions after a warm-up, concurrent loops, percentiles, peak RSS."""

from __future__ import annotations

import resource
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """One measured operation: its timings (seconds), its rate where it is a throughput,
    and, where it has them, its floor (the bare driver) and its peer (PostgreSQL)."""

    name: str
    samples: list[float]
    rows: int | None = None
    floor: Result | None = None
    target: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    peer: Result | None = None
    rate: float | None = None  # operations (or instances) per second, for throughputs

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def ratio(self) -> float | None:
        """p50 over the floor's p50: how much our code adds to the database's own work."""
        return self.p50 / self.floor.p50 if self.floor and self.floor.p50 else None

    @property
    def ratio_of(self) -> str:
        """What ``ratio_to_peer`` compares: the rates of throughputs, else the p50s."""
        return "rate" if self.rate and self.peer and self.peer.rate else "p50"

    @property
    def ratio_to_peer(self) -> float | None:
        """Ours against the peer's, so that <= 1.0 means we are at least as fast: our p50
        over the peer's, or for a throughput the peer's rate over ours."""
        if self.peer is None:
            return None
        if self.ratio_of == "rate":
            assert self.rate and self.peer.rate
            return self.peer.rate / self.rate
        return self.p50 / self.peer.p50 if self.peer.p50 else None

    def to_dict(self) -> dict[str, Any]:
        peer = self.peer
        return {"name": self.name, "n": len(self.samples), "p50_ms": self.p50 * 1e3,
                "p95_ms": self.p95 * 1e3, "p99_ms": self.p99 * 1e3, "max_ms": self.max * 1e3,
                "rows": self.rows, "rate_per_s": self.rate,
                "floor_p50_ms": self.floor.p50 * 1e3 if self.floor else None,
                "floor_rate_per_s": self.floor.rate if self.floor else None,
                "ratio_to_floor": self.ratio,
                "peer_p50_ms": peer.p50 * 1e3 if peer else None,
                "peer_p99_ms": peer.p99 * 1e3 if peer else None,
                "peer_rate_per_s": peer.rate if peer else None,
                "peer_rows": peer.rows if peer else None,
                "ratio_to_peer": self.ratio_to_peer,
                "ratio_to_peer_of": self.ratio_of if peer else None,
                "target": self.target, **self.extra}


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(name: str, fn: Callable[[], Any], repeat: int = 10, warmup: int = 2,
          target: str | None = None) -> Result:
    """Call ``fn`` ``warmup`` times unmeasured, then ``repeat`` times measured."""
    rows = None
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - start)
        rows = _count(out)
    return Result(name, samples, rows=rows, target=target)


def once(name: str, fn: Callable[[], Any], target: str | None = None) -> Result:
    """A single measured call, for operations that change the graph (imports, cascades)."""
    start = time.perf_counter()
    out = fn()
    return Result(name, [time.perf_counter() - start], rows=_count(out), target=target)


def concurrent(name: str, workers: list[Callable[[], Any]], seconds: float,
               target: str | None = None) -> Result:
    """Call each worker in a loop in a thread of its own for ``seconds``, all starting
    together: every call's latency, and the calls per second of them all together."""
    samples: list[list[float]] = [[] for _ in workers]
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers) + 1)

    def loop(fn: Callable[[], Any], own: list[float]) -> None:
        start.wait()
        deadline = time.perf_counter() + seconds
        try:
            while (began := time.perf_counter()) < deadline:
                fn()
                own.append(time.perf_counter() - began)
        except BaseException as error:  # re-raised below, in the caller's thread
            errors.append(error)
    threads = [threading.Thread(target=loop, args=(fn, own), daemon=True)
               for fn, own in zip(workers, samples, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    every = [s for own in samples for s in own]
    return Result(name, every, rows=len(every), target=target, rate=len(every) / elapsed,
                  extra={"threads": len(workers), "seconds": round(elapsed, 2)})


def _count(out: Any) -> int | None:
    try:
        return len(out)
    except TypeError:
        return None


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    Read from /proc/self/status (VmHWM): getrusage's ru_maxrss survives execve on Linux, so
    a child started by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
