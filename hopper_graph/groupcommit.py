"""Group commit: writes of one kind that arrive together share one statement and its commit.

Each Neo4j transaction pays a Bolt round trip and a commit whatever it writes, so eight
writers each sending its own statement pay eight of each. A :class:`GroupCommit` sends
what queued while the previous batch was in flight as one batch, the way a database
shares one log flush among the transactions that wait on it ("natural batching"):

- a caller that finds no batch in flight leads at once: a lone writer pays no added wait,
  its batch is its own request alone;
- callers that arrive while a batch is in flight queue; when it commits, the leader hands
  the lead to the oldest of them, which takes everything queued as the next batch;
- two requests with the same key (the instance a write changes) never share a batch: the
  later waits for the next one, so writes to one instance apply in arrival order, as they
  would one after the other;
- each caller gets its own outcome back: the value, or the exception the batch function
  gave for its request alone. An exception of the whole batch (the server down, say)
  reaches every request in it.

No thread of its own and no timer: batches run in the callers' threads, one at a time per
``GroupCommit``. This module knows nothing of Neo4j; ``statements`` and the lifecycle
give it the batch function.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from hopper_graph import metrics

Q = TypeVar("Q")
A = TypeVar("A")

MAX_BATCH = 256
"""Requests one batch takes at most: enough to share a commit among a fleet's writers,
few enough that one statement's parameters stay small."""


class _Ticket:
    """One caller's request, waiting for its outcome or for the lead."""

    __slots__ = ("error", "key", "lead", "ready", "request", "value")

    def __init__(self, request: Any, key: Hashable) -> None:
        self.request = request
        self.key = key
        self.ready = threading.Event()
        self.lead = False
        self.value: Any = None
        self.error: BaseException | None = None

    def answer(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error
        self.ready.set()


BatchFunction = Callable[[Sequence[Q]], Sequence[A | BaseException]]
"""Runs a batch: one outcome per request, in order; an exception as an outcome is that
request's own error (the others stand); raising fails every request of the batch."""


class GroupCommit(Generic[Q, A]):
    """Natural batching of one kind of write (see the module docstring)."""

    def __init__(self, run: BatchFunction[Q, A], max_batch: int = MAX_BATCH,
                 name: str = "write") -> None:
        self._run = run
        self.name = name
        """The kind of write, for the batch-size metric."""
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Ticket] = deque()
        self._busy = False
        self.batches = 0
        """Batches run so far (the tests count statements by it)."""
        self.largest = 0
        """The most requests one batch has held."""

    def submit(self, request: Q, key: Hashable) -> A:
        """``request``'s outcome, once the batch that holds it has committed."""
        ticket = _Ticket(request, key)
        with self._lock:
            self._queue.append(ticket)
            leads = not self._busy
            self._busy = True
        if not leads:
            ticket.ready.wait()
        while not ticket.ready.is_set() or ticket.lead:
            ticket.lead = False
            ticket.ready.clear()
            self._lead(ticket)
        if ticket.error is not None:
            raise ticket.error
        value: A = ticket.value
        return value

    def _lead(self, own: _Ticket) -> None:
        """Run batches until ``own`` has its outcome, then pass the lead on."""
        while not own.ready.is_set():
            self._run_batch(self._take())
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.ready.set()
            else:
                self._busy = False

    def _take(self) -> list[_Ticket]:
        """The oldest queued requests, at most one per key and ``max_batch`` in all."""
        taken: list[_Ticket] = []
        keys: set[Hashable] = set()
        with self._lock:
            kept: deque[_Ticket] = deque()
            while self._queue:
                ticket = self._queue.popleft()
                if ticket.key in keys or len(taken) >= self.max_batch:
                    kept.append(ticket)
                else:
                    keys.add(ticket.key)
                    taken.append(ticket)
            self._queue = kept
        return taken

    def _run_batch(self, batch: list[_Ticket]) -> None:
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        metrics.batch(self.name, len(batch))
        try:
            outcomes = self._run([t.request for t in batch])
        except BaseException as exc:  # every request shares the batch's fate
            for ticket in batch:
                ticket.answer(error=exc)
            return
        for ticket, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                ticket.answer(error=outcome)
            else:
                ticket.answer(outcome)
