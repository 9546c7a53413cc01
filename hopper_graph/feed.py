"""The change feed: reading it, following it live, and the in-process subscribers.

A manager's :class:`Feed` (``manager.feed``) reads through the Graph and repository the
manager hands it. :meth:`Feed.follow` yields the audit events after a seq as they commit,
for as long as the caller keeps iterating; the CLI's ``events --follow`` and the API's
event stream are both built on it. :meth:`Feed.subscribe` calls a function in this process
with each event a write of this manager commits. What following costs does not grow with
the followers:

- **One poller per process and graph** (:class:`Broadcaster`): a daemon thread that, only
  while someone follows, asks every ``POLL_INTERVAL`` for the events after the last one it
  saw (``feed_poll``: one round trip when nothing happened), sequences committed pending
  events when there are any (``audit.sequence``: events written in any process reach the
  feed this way), and hands each new batch to every follower's inbox. A hundred open
  streams in a worker cost the database what one does.
- **Each follower catches up by itself**: from its own cursor it reads pages of
  ``events_since`` until it has caught up, then takes the poller's batches. It registers
  with the poller before it reads, so nothing falls between the two (see
  :meth:`Broadcaster.open`), and it drops what it has already yielded, so nothing comes
  twice. A follower that falls ``MAX_QUEUED`` events behind loses its inbox and catches
  up from the database again: a slow reader costs memory up to that bound, never more.
- **The subtree filter** asks the database once per batch about the instances it has not
  seen yet (``get_subtree_members``: each one's ancestors, walked upwards), and keeps the
  answers until a ``move`` event passes (a move changes the answer of a whole subtree,
  so the filter forgets them all then and asks again). A move event itself is kept when
  the instance, the parent it left (``from_parent_id``) or the one it went to
  (``to_parent_id``) is in the subtree: followers of the old place and of the new one
  both see it. A deleted instance is placed by the ``parent_id`` its delete event
  recorded, so the deletes of a subtree, and the earlier events of instances deleted
  since, are still in it.

Why polling and not a notification: a write in another process (another worker, a script)
tells this one nothing, and Neo4j has no LISTEN/NOTIFY; a poll every 50 ms is one cheap
read, and an event reaches an open HTTP stream in 60-70 ms at the median (p95 140-220 ms)
after its commit, as measured under gunicorn on a loaded two-core machine.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from hopper_graph import audit
from hopper_graph.graph import Graph
from hopper_graph.labels import Selector, selector_of
from hopper_graph.models import InstanceEvent
from hopper_graph.queries import QUERIES
from hopper_graph.repository import InstanceRepository
from hopper_graph.rows import event_from_row, events_from_columns

log = logging.getLogger("hopper_graph.feed")

POLL_INTERVAL = 0.05
"""Seconds between the poller's reads while someone follows."""
POLL_BATCH = 1000
"""Events the poller reads at most per round trip (it reads again at once when full)."""
CATCH_UP_PAGE = 1000
"""Events a follower reads per page while it catches up."""
SCOPED_SCAN = 5 * CATCH_UP_PAGE
"""Events of the feed one page of a subtree's feed reads at most (``read_within``)."""
MAX_QUEUED = 10_000
"""Events an inbox holds at most; past that its follower catches up from the database."""
MAX_REMEMBERED = 100_000
"""Subtree answers a follower keeps; past that it forgets them all and asks again."""
WAIT_STEP = 1.0
"""A follower waiting for events wakes at least this often, whatever its heartbeat."""


class Inbox:
    """What the poller hands one follower: batches of events, or word that it fell behind."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._events: collections.deque[InstanceEvent] = collections.deque()
        self._behind = False
        self.closed = False
        """Set by :func:`close_all`: the follower ends."""

    def put(self, events: list[InstanceEvent]) -> None:
        with self._ready:
            if len(self._events) + len(events) > MAX_QUEUED:
                self._events.clear()  # the follower reads them from the database instead
                self._behind = True
            else:
                self._events.extend(events)
            self._ready.notify_all()

    def take(self, timeout: float | None) -> list[InstanceEvent] | None:
        """The events queued so far (waiting up to ``timeout`` for one: ``[]`` when none
        came), or None when the follower fell behind and must read the database."""
        with self._ready:
            if not self._events and not self._behind and not self.closed:
                self._ready.wait(timeout)
            if self._behind:
                self._behind = False
                return None
            events = list(self._events)
            self._events.clear()
            return events

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()


class Broadcaster:
    """The one poller of a graph in this process, running while it has followers."""

    def __init__(self, graph: Graph, interval: float = POLL_INTERVAL) -> None:
        self._graph = weakref.ref(graph)  # the registry's key: kept alive by the followers
        self.interval = interval
        self._lock = threading.Lock()
        self._inboxes: set[Inbox] = set()
        self._thread: threading.Thread | None = None
        self._head = 0

    @property
    def followers(self) -> int:
        with self._lock:
            return len(self._inboxes)

    @property
    def graph(self) -> Graph:
        graph = self._graph()
        if graph is None:  # only once every manager over it, and every follower, is gone
            raise RuntimeError("the graph this poller read is gone")
        return graph

    def open(self) -> Inbox:
        """A new follower's inbox. Every event numbered after this returns reaches it: a
        poller that starts here starts from the head read now, and one already running
        hands each batch to every inbox registered before it hands it out. What was
        numbered before, the follower reads itself, after this."""
        inbox = Inbox()
        with self._lock:
            if self._thread is None:
                self._head = _head(self.graph)
                self._thread = threading.Thread(target=self._run, name="hopper-feed-poller",
                                                daemon=True)
                self._thread.start()
            self._inboxes.add(inbox)
        if _ending_for_good:  # close_all(for_good=True) ran before this follower began
            inbox.close()
        return inbox

    def close(self, inbox: Inbox) -> None:
        with self._lock:
            self._inboxes.discard(inbox)

    def end_all(self) -> None:
        """End every follower: each one's generator returns at once."""
        with self._lock:
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            inbox.close()

    def _run(self) -> None:
        """Poll until the last follower leaves; an outage is waited out, not fatal."""
        while True:
            with self._lock:
                if not self._inboxes:
                    self._thread = None
                    return
            try:
                full = self._poll()
            except Exception as exc:  # the database is away: the followers wait, so do we
                if self.followers:  # (none: its driver may have closed as they left)
                    log.warning("the change feed's poller failed, trying again in 1 s: %s",
                                exc)
                    time.sleep(1.0)
                full = False
            if not full:
                time.sleep(self.interval)

    def _poll(self) -> bool:
        """Read the events after the head and hand them out; whether the batch was full."""
        events = self._read()
        if events:
            self._head = events[-1].seq
            with self._lock:
                inboxes = list(self._inboxes)
            for inbox in inboxes:
                inbox.put(events)
        return len(events) == POLL_BATCH

    def _read(self) -> list[InstanceEvent]:
        graph = self.graph
        row = graph.read_rows(QUERIES.feed_poll.text, after=self._head, limit=POLL_BATCH)[0]
        if row["head"] < self._head:  # emptied (a test, a development reset): start over
            self._head = row["head"]
            return []
        if row["pending"] and audit.sequence(graph):
            row = graph.read_rows(QUERIES.feed_poll.text, after=self._head,
                                  limit=POLL_BATCH)[0]
        return events_from_columns(row)


def _head(graph: Graph) -> int:
    return int(graph.read_rows(QUERIES.get_event_head.text)[0]["head"])


_BROADCASTERS: weakref.WeakKeyDictionary[Graph, Broadcaster] = weakref.WeakKeyDictionary()
_BROADCASTERS_LOCK = threading.Lock()


def broadcaster(graph: Graph) -> Broadcaster:
    """The process's poller for ``graph`` (made on first use)."""
    with _BROADCASTERS_LOCK:
        found = _BROADCASTERS.get(graph)
        if found is None:
            found = _BROADCASTERS[graph] = Broadcaster(graph)
        return found


def close_all(*, for_good: bool = False) -> None:
    """End every follower in this process: their generators return, so a server that
    stops is not held up by open streams (an HTTP stream never ends by itself).

    ``for_good``: also end each follower that begins from now on, at once. A server that
    stops needs it: a stream whose response has started may not have opened its inbox yet
    (the generator opens it at its first step), and it would then outlive the stop."""
    global _ending_for_good
    if for_good:
        _ending_for_good = True  # set before the inboxes are listed: see Broadcaster.open
    with _BROADCASTERS_LOCK:
        broadcasters = list(_BROADCASTERS.values())
    for found in broadcasters:
        found.end_all()


_ending_for_good = False


Subscriber = Callable[[InstanceEvent], None]


class Feed:
    """The change feed of one graph, for one manager: a page of it, following it live,
    and the in-process subscribers told of each commit. It reads through the Graph and
    the repository it is handed (the manager's)."""

    def __init__(self, graph: Graph, repository: InstanceRepository) -> None:
        self.graph = graph
        self.repository = repository
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def head(self) -> int:
        """The seq of the newest event (after numbering those committed): follow from here
        to see only what happens next."""
        self.repository.sequence_events()
        return self.numbered_head()

    def numbered_head(self) -> int:
        """The seq of the newest event numbered so far, numbering nothing (one read): what
        a page that has just read the feed, and so numbered it, can tell as its head."""
        return _head(self.graph)

    def read(self, after: int = 0, subtree: str | None = None,
             limit: int = 100, selector: Selector | str | None = None) -> list[InstanceEvent]:
        """Up to ``limit`` events with ``seq`` above ``after``, oldest first, of ``subtree``
        only when given, and of instances a label ``selector`` matches only when given (as
        :meth:`follow` filters): a page of the feed, and no waiting."""
        members = self._filters(subtree, selector)
        kept: list[InstanceEvent] = []
        while len(kept) < limit:
            want = CATCH_UP_PAGE if members else min(limit - len(kept), CATCH_UP_PAGE)
            page = self.repository.events_since(after, want)
            kept += members.keep(page) if members and page else page
            if len(page) < want:
                break
            after = page[-1].seq
        return kept[:limit]

    def read_within(self, after: int, subtree: str, limit: int = 100,
                    scan: int = SCOPED_SCAN, selector: Selector | str | None = None
                    ) -> tuple[list[InstanceEvent], int]:
        """As :meth:`read` for ``subtree``, but reading at most ``scan`` events of the
        feed (so a subtree with little in a long feed costs a bounded read, not the feed):
        the events kept, and the seq the read reached, which is where the next read goes
        on (``after``), whether or not anything was kept. ``selector`` keeps only the
        events of instances it matches, as :meth:`read` does."""
        members = self._filters(subtree, selector)
        assert members is not None
        kept: list[InstanceEvent] = []
        read = 0
        while len(kept) < limit and read < scan:
            want = min(CATCH_UP_PAGE, scan - read)
            page = self.repository.events_since(after, want)
            read += len(page)
            ours = {e.seq for e in members.keep(page)} if page else set()
            for event in page:  # in order, up to the last one looked at
                if len(kept) == limit:
                    break
                after = event.seq
                if event.seq in ours:
                    kept.append(event)
            if len(page) < want:
                break
        return kept, after

    def scan(self, after: int = 0, limit: int = 100,
             selector: Selector | str | None = None) -> tuple[list[InstanceEvent], int]:
        """One page of the feed read through a label ``selector``: the ``limit`` events
        after ``after``, those of instances the selector matches kept, and the seq to go
        on after (the last event read, kept or not). A page costs ``limit`` events however
        few match; it may hold none while more follow, until the cursor reaches the head."""
        page = self.repository.events_since(after, limit)
        filters = self._filters(None, selector)
        kept = filters.keep(page) if filters and page else page
        return kept, page[-1].seq if page else after

    def follow(self, after: int = 0, subtree: str | None = None, *,
               heartbeat: float | None = None, selector: Selector | str | None = None
               ) -> Generator[InstanceEvent | None, None, None]:
        """The events with ``seq`` above ``after``, oldest first, then each new one as it
        commits, until the caller stops iterating (or closes the generator).

        ``subtree``: only events of that instance and its descendants (deleted ones too).
        ``selector``: only events of instances whose labels the label selector matches
        when the batch is read (a deleted instance matches nothing).
        ``heartbeat``: also yield None whenever that many seconds pass with nothing
        yielded, so a caller that must show it is alive (an HTTP stream) gets the chance.
        Raises what ``events_since`` raises for a bad ``after``, and NotFound for an
        unknown ``subtree``, here and not at the first ``next()``.
        """
        self.repository.events_since(after, 1)
        return self._follow(_Cursor(after, heartbeat), self._filters(subtree, selector))

    def _filters(self, subtree: str | None, selector: Selector | str | None
                 ) -> Filters | None:
        """What keeps a feed to ``subtree`` and ``selector``; None keeps everything."""
        chosen = selector_of(selector)
        kept: list[Membership | Labelled] = []
        if subtree is not None:
            kept.append(Membership(self.graph, self.repository.get(subtree).id))
        if chosen:
            kept.append(Labelled(self.graph, chosen))
        return Filters(kept) if kept else None

    def _follow(self, cursor: _Cursor, members: Filters | None
                ) -> Generator[InstanceEvent | None, None, None]:
        poller = broadcaster(self.graph)
        inbox = poller.open()
        try:
            while not inbox.closed:
                batch = cursor.next_batch(self.repository, inbox)
                kept = members.keep(batch) if members and batch else batch
                if not kept and cursor.heartbeat_due():
                    cursor.yielded()
                    yield None
                for event in kept:
                    cursor.yielded()
                    yield event
        finally:
            poller.close(inbox)

    # -- in-process subscribers -------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with each audit event after its transaction commits, in this
        process. Returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)
        return unsubscribe

    def publish(self, rows: list[dict[str, Any]]) -> None:
        """Tell the subscribers about committed events, once the feed has numbered them
        (the write that made them numbers them itself, only when someone listens)."""
        with self._lock:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        seqs = self._sequenced([row["id"] for row in rows])
        for event in map(event_from_row, ({**row, "seq": seqs[row["id"]]} for row in rows)):
            for subscriber in subscribers:
                try:
                    subscriber(event)
                except Exception:  # a caller's subscriber: the change committed regardless
                    log.exception("subscriber %r failed on event %s", subscriber, event.seq)

    def _sequenced(self, event_ids: list[str]) -> dict[str, int | None]:
        while True:
            seqs = audit.seqs_of(self.graph, event_ids)
            if all(seqs.get(i) is not None for i in event_ids) or not audit.sequence(
                    self.graph):
                return {i: seqs.get(i) for i in event_ids}


@dataclass
class _Cursor:
    """Where a follower is: the last seq it saw, whether it reads the database (catching
    up) or its inbox, and when it last yielded."""

    seq: int
    heartbeat: float | None
    catching_up: bool = True
    last_yield: float = field(default_factory=time.monotonic)

    def next_batch(self, repository: InstanceRepository,
                   inbox: Inbox) -> list[InstanceEvent]:
        """The next events past the cursor; ``[]`` when a heartbeat is due first, or the
        inbox was closed."""
        while not inbox.closed:
            if self.catching_up:
                events = repository.events_since(self.seq, CATCH_UP_PAGE)
                self.catching_up = len(events) == CATCH_UP_PAGE
            else:
                taken = inbox.take(self._wait())
                self.catching_up = taken is None
                events = taken or []
            events = [e for e in events if e.seq > self.seq]
            if events:
                self.seq = events[-1].seq
                return events
            if self.heartbeat_due():
                return []
        return []

    def yielded(self) -> None:
        self.last_yield = time.monotonic()

    def heartbeat_due(self) -> bool:
        return (self.heartbeat is not None
                and time.monotonic() - self.last_yield >= self.heartbeat)

    def _wait(self) -> float:
        if self.heartbeat is None:
            return WAIT_STEP
        return max(0.0, min(WAIT_STEP, self.last_yield + self.heartbeat - time.monotonic()))


class Filters:
    """Several filters of the feed, each keeping what the one before kept."""

    def __init__(self, filters: list[Membership | Labelled]) -> None:
        self.filters = filters

    def keep(self, events: list[InstanceEvent]) -> list[InstanceEvent]:
        for kept in self.filters:
            events = kept.keep(events) if events else events
        return events


class Labelled:
    """Which events are of instances a label selector matches: asked of the database once
    per batch (``matching_instance_ids``: one seek per instance), since labels change."""

    def __init__(self, graph: Graph, selector: Selector) -> None:
        self.graph = graph
        self.selector = selector

    def keep(self, events: list[InstanceEvent]) -> list[InstanceEvent]:
        ids = sorted({e.instance_id for e in events})
        rows = self.graph.read_rows(QUERIES.matching_instance_ids.text, ids=ids,
                                    selector=self.selector.params())
        matching = set(rows[0]["ids"]) if rows else set()
        return [e for e in events if e.instance_id in matching]


class Membership:
    """Which events belong to the subtree of ``root``: answered by the database once per
    instance, per batch of instances not seen before."""

    def __init__(self, graph: Graph, root: str) -> None:
        self.graph = graph
        self.root = root
        self._known: dict[str, bool] = {root: True}

    def keep(self, events: list[InstanceEvent]) -> list[InstanceEvent]:
        """The events of the subtree, in their order. The answers learned hold until a
        move, which is kept if it left or entered the subtree; then they are asked again."""
        kept: list[InstanceEvent] = []
        start = 0
        for index, event in enumerate(events):
            if event.event == "move":
                ends = {e for e in (event.from_parent_id, event.to_parent_id) if e}
                self._ask(ends)
                if event.instance_id not in self._known and event.from_parent_id:
                    # before its move it hung where it left: the database says where it
                    # hangs now, so the events before the move are placed by the old parent
                    self._known[event.instance_id] = bool(
                        self._known.get(event.from_parent_id))
                kept += self._keep_between(events[start:index])
                if any(self._known.get(i) for i in (event.instance_id, *ends)):
                    kept.append(event)
                self._known = {self.root: True}
                start = index + 1
        return kept + self._keep_between(events[start:])

    def _keep_between(self, events: list[InstanceEvent]) -> list[InstanceEvent]:
        """The events of the subtree among ``events``, which hold no move."""
        self._ask({e.instance_id for e in events})
        return [e for e in events
                if self._known.get(e.instance_id) or e.cause == self.root]

    def _ask(self, ids: set[str]) -> None:
        unknown = ids - self._known.keys()
        if unknown:
            if len(self._known) > MAX_REMEMBERED:
                self._known = {self.root: True}
            self._learn(unknown)

    def _learn(self, ids: set[str]) -> None:
        """Answer for ``ids``: live ones from their ancestors; a deleted one from where it
        hung, walking up through deleted parents (one query per level not yet known)."""
        hung: dict[str, str | None] = {}
        asking = ids
        while asking:
            rows = self.graph.read_rows(QUERIES.get_subtree_members.text, root=self.root,
                                        ids=sorted(asking))
            for row in rows:
                if row["live"]:
                    self._known[row["id"]] = bool(row["member"])
                else:
                    hung[row["id"]] = row["parent_id"]
            asking = {p for p in hung.values()
                      if p is not None and p not in self._known and p not in hung}
        for instance_id in hung:
            self._known[instance_id] = self._placed(instance_id, hung)

    def _placed(self, instance_id: str, hung: dict[str, str | None]) -> bool:
        """Whether a deleted instance hung in the subtree: up its recorded parents to one
        whose answer is known (none recorded, as before deletes recorded it: not in it)."""
        seen: list[str] = []
        at: str | None = instance_id
        while at is not None and at not in self._known:
            seen.append(at)
            at = hung.get(at)
        verdict = at is not None and self._known[at]
        for visited in seen:
            self._known[visited] = verdict
        return verdict
