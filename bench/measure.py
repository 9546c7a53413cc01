"""Timing helpers: repetitions after a warm-up, percentiles, and peak RSS."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """One measured operation: its timings (seconds) and, where it has one, its floor."""

    name: str
    samples: list[float]
    rows: int | None = None
    floor: Result | None = None
    target: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def max(self) -> float:
        return max(self.samples)

    @property
    def ratio(self) -> float | None:
        """p50 over the floor's p50: how much our code adds to the database's own work."""
        return self.p50 / self.floor.p50 if self.floor and self.floor.p50 else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": len(self.samples), "p50_ms": self.p50 * 1e3,
                "p95_ms": self.p95 * 1e3, "max_ms": self.max * 1e3, "rows": self.rows,
                "floor_p50_ms": self.floor.p50 * 1e3 if self.floor else None,
                "ratio_to_floor": self.ratio, "target": self.target, **self.extra}


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
