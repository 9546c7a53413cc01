"""GroupCommit with real threads and a batch function that records what it was given."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from hopper_graph.groupcommit import GroupCommit


class Recorder:
    """A batch function that holds each batch until released, and logs the batches."""

    def __init__(self, hold: bool = False) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, requests: Sequence[tuple[str, int]]) -> list[object]:
        self.batches.append(list(requests))
        self.entered.set()
        self.release.wait(5)
        return [ValueError(f"refused {key}") if n < 0 else n * 10 for key, n in requests]


def submit_in_thread(group: GroupCommit, request: tuple[str, int], out: dict) -> threading.Thread:
    def run() -> None:
        try:
            out[request] = group.submit(request, key=request[0])
        except ValueError as exc:
            out[request] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_queued(group: GroupCommit, count: int) -> None:
    """Until ``count`` writers queue behind the batch in flight."""
    while len(group._queue) < count:
        threading.Event().wait(0.001)


def test_a_lone_writer_runs_its_own_batch_at_once() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder)
    assert group.submit(("a", 1), key="a") == 10
    assert group.submit(("b", 2), key="b") == 20
    assert recorder.batches == [[("a", 1)], [("b", 2)]]
    assert group.batches == 2


def behind_a_batch(first: tuple[str, int], others: list[tuple[str, int]]
                   ) -> tuple[Recorder, dict]:
    """Submit ``first``, hold its batch, queue ``others`` behind it one after the other
    (their arrival order is theirs), then release: the batches and every outcome."""
    recorder = Recorder(hold=True)
    group = GroupCommit(recorder)
    out: dict = {}
    threads = [submit_in_thread(group, first, out)]
    assert recorder.entered.wait(5)
    for queued, request in enumerate(others, 1):
        threads.append(submit_in_thread(group, request, out))
        wait_queued(group, queued)
    recorder.release.set()
    for thread in threads:
        thread.join(5)
    return recorder, out


def test_writes_queued_behind_a_batch_in_flight_share_the_next_one() -> None:
    recorder, out = behind_a_batch(("a", 1), [(f"k{i}", i + 2) for i in range(6)])
    assert recorder.batches == [[("a", 1)], [(f"k{i}", i + 2) for i in range(6)]]
    assert out == {("a", 1): 10, **{(f"k{i}", i + 2): (i + 2) * 10 for i in range(6)}}


def test_a_refused_request_fails_alone() -> None:
    recorder, out = behind_a_batch(("a", 1), [("b", -1), ("c", 3)])
    assert isinstance(out[("b", -1)], ValueError) and "refused b" in str(out[("b", -1)])
    assert out[("c", 3)] == 30
    assert recorder.batches[1] == [("b", -1), ("c", 3)]


def test_two_writes_to_one_key_never_share_a_batch_and_keep_their_order() -> None:
    recorder, out = behind_a_batch(("x", 0), [("x", 1), ("x", 2), ("x", 3), ("y", 9)])
    assert [b for batch in recorder.batches for b in batch if b[0] == "x"] == [
        ("x", 0), ("x", 1), ("x", 2), ("x", 3)]
    assert all(len({key for key, _ in batch}) == len(batch) for batch in recorder.batches)
    assert recorder.batches[1] == [("x", 1), ("y", 9)]
    assert out[("x", 3)] == 30 and out[("y", 9)] == 90


def test_an_error_of_the_whole_batch_reaches_every_request_in_it() -> None:
    def broken(requests: Sequence[tuple[str, int]]) -> list[object]:
        raise ConnectionError("server gone")
    group: GroupCommit = GroupCommit(broken)
    with pytest.raises(ConnectionError, match="server gone"):
        group.submit(("a", 1), key="a")
    with pytest.raises(ConnectionError):  # and the next caller leads again
        group.submit(("a", 2), key="a")


def test_many_threads_each_get_their_own_answer() -> None:
    group = GroupCommit(Recorder())
    out: dict = {}
    threads = [submit_in_thread(group, (f"k{i % 7}", i), out) for i in range(200)]
    for thread in threads:
        thread.join(10)
    assert out == {(f"k{i % 7}", i): i * 10 for i in range(200)}
    assert group.batches <= 200 and group.largest <= group.max_batch
