"""``hopper-graph events [--follow]`` against the real Neo4j.

A page goes through click's runner; ``--follow`` runs as a real process (it must keep
printing as events commit and end cleanly on Ctrl-C, which only a process shows).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from tests.cli.test_cli import assert_one_error_line, run
from tests.factories import make_global, make_project

WITHIN = 30.0
"""Seconds a test waits for the follower's output before it fails (it comes in well
under one; a loaded machine starts Python slowly)."""


@pytest.fixture
def started_tree(request, manager):
    """GLOBAL global -> PROJECTs alpha (with alpha-run) and beta; global and alpha started,
    by the actor "tester" where the events show it."""
    request.getfixturevalue("env")  # the command line pointed at the test server
    g = make_global(manager)
    a = make_project(manager, g, name="alpha")
    b = make_project(manager, g, name="beta")
    run_ = manager.create(name="alpha-run", scope="ORCHESTRATION", parent_id=a.id,
                          actor="tester")
    manager.start(g.id)
    manager.start(a.id, actor="tester")
    return g, a, b, run_


def test_a_page_prints_one_event_per_line(started_tree, manager):
    header, *lines = run("events").stdout.splitlines()
    assert header.split() == ["SEQ", "AT", "INSTANCE_ID", "EVENT", "CHANGE", "ACTOR"]
    expected = manager.events_since(0, 100)
    assert len(lines) == len(expected) == 6
    for line, event in zip(lines, expected, strict=True):
        seq, at, instance_id, name, *_ = line.split()
        assert (int(seq), instance_id, name) == (event.seq, event.instance_id, event.event)
        assert at.endswith("Z") and "T" in at
    assert lines[-1].split()[3:] == ["start", "CREATED->ACTIVE", "tester"]
    assert lines[3].split()[3:5] == ["create", "->CREATED"]


def test_json_lines_after_a_seq_with_a_next_page_hint(started_tree):
    result = run("events", "--after", "2", "--limit", "3", "--json")
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert [i["seq"] for i in items] == [3, 4, 5]
    assert {"id", "instance_id", "event", "from_status", "to_status", "actor", "at"} <= set(
        items[0])
    assert result.stderr.strip() == "next page: --after 5"
    last = run("events", "--after", "5", "--json")
    assert [json.loads(line)["seq"] for line in last.stdout.splitlines()] == [6]
    assert last.stderr == ""


def test_the_subtree_takes_a_scope_and_name(started_tree):
    _, a, _, run_ = started_tree
    lines = run("events", "--subtree", "PROJECT:alpha", "--no-headers").stdout.splitlines()
    assert [(line.split()[2], line.split()[3]) for line in lines] == [
        (a.id, "create"), (run_.id, "create"), (a.id, "start")]


def test_every_output_format_parses_back_to_the_same_events(started_tree, manager):
    expected = [e.to_dict() for e in manager.events_since(0, 100)]
    lines = run("events", "-o", "json").stdout.splitlines()  # JSON Lines: a feed has no end
    assert [json.loads(line) for line in lines] == expected
    assert list(yaml.safe_load_all(run("events", "-o", "yaml").stdout)) == expected
    assert run("events", "-o", "name").stdout.split() == [e["id"] for e in expected]
    header, *wide = run("events", "-o", "wide").stdout.splitlines()
    assert header.split()[-3:] == ["ID", "CAUSE", "REASON"]
    assert [line.split()[6] for line in wide] == [e["id"] for e in expected]
    assert run("events", "--after", "6", "-o", "wide").stdout == ""  # no events, no header


def test_bad_input_is_one_error_line(started_tree):
    assert_one_error_line(run("events", "--after", "-1", code=2), "--after")
    assert_one_error_line(run("events", "--subtree", "00000000-0000-0000-0000-000000000000",
                              code=1), "00000000-0000-0000-0000-000000000000")
    assert_one_error_line(run("events", "--limit", "0", code=2), "--limit")


class Follower:
    """``hopper-graph events --follow ARGS`` as a process; a thread collects its lines."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from hopper_graph.cli import main; main()", "events",
             "--follow", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line.rstrip("\n"))

    def next_lines(self, count: int) -> list[str]:
        """The next ``count`` lines it prints; fails after ``WITHIN`` seconds."""
        deadline = time.monotonic() + WITHIN
        try:
            return [self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
                    for _ in range(count)]
        except queue.Empty:
            pytest.fail(f"the follower printed fewer than {count} lines in {WITHIN} s")

    def end(self) -> tuple[int, str]:
        """Its exit code and stderr, once it has exited."""
        code = self.process.wait(timeout=WITHIN)
        return code, self.process.stderr.read()  # type: ignore[union-attr]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()  # type: ignore[union-attr]
        self.process.stderr.close()  # type: ignore[union-attr]


@pytest.fixture
def follow():
    started: list[Follower] = []

    def start(*args: str) -> Follower:
        started.append(Follower(*args))
        return started[-1]

    yield start
    for follower in started:
        follower.close()


def test_follow_prints_new_events_as_json_lines_and_ends_on_ctrl_c(started_tree, manager,
                                                                   follow):
    """Following starts at the newest event: the events before it are not printed. When
    the process has read its start is not visible from outside, so the test writes until
    the follower prints."""
    b = started_tree[2]
    before = manager.feed.head()
    follower = follow("--json")
    manager.start(b.id)
    deadline = time.monotonic() + WITHIN
    toggles = iter(["pause", "resume"] * 1000)
    while follower.lines.empty():
        assert time.monotonic() < deadline, "the follower printed nothing"
        manager.transition(b.id, next(toggles))
        time.sleep(0.3)
    time.sleep(0.5)
    printed = [json.loads(line) for line in follower.next_lines(follower.lines.qsize())]
    manager.transition(b.id, next(toggles))
    [last] = [json.loads(line) for line in follower.next_lines(1)]
    follower.process.send_signal(signal.SIGINT)
    code, stderr = follower.end()
    seqs = [e["seq"] for e in [*printed, last]]
    assert seqs[0] > before  # nothing from before it started
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # each once, in order
    assert {e["instance_id"] for e in [*printed, last]} == {b.id}
    assert code == 0
    assert "Traceback" not in stderr and "Aborted" not in stderr


def test_follow_from_a_seq_with_a_limit_stops_by_itself(started_tree, manager, follow):
    a = started_tree[1]
    follower = follow("--after", "4", "--limit", "3", "--subtree", "GLOBAL:global",
                      "--no-headers")
    lines = follower.next_lines(2)  # seqs 5 and 6 are already there
    manager.stop(a.id)  # the third
    lines += follower.next_lines(1)
    assert follower.end()[0] == 0
    assert [line.split()[0] for line in lines] == ["5", "6", "7"]
    assert lines[2].split()[2:5] == [a.id, "stop", "ACTIVE->STOPPED"]
