"""The state machine and its compiled table, without a database."""

from __future__ import annotations

import pytest

from hopper_graph import InstanceStatus, InvalidTransition, ParentNotActive
from hopper_graph.errors import InstanceRunning
from hopper_graph.machine import EVENTS, TRANSITIONS, TransitionSubject, decide, event_to

S = InstanceStatus

# PRODUCT.md's table, written out independently of the machine.
EXPECTED = {
    (S.CREATED, "start"): S.ACTIVE, (S.STOPPED, "start"): S.ACTIVE,
    (S.ACTIVE, "pause"): S.PAUSED, (S.PAUSED, "resume"): S.ACTIVE,
    (S.ACTIVE, "stop"): S.STOPPED, (S.PAUSED, "stop"): S.STOPPED,
    (S.CREATED, "archive"): S.ARCHIVED, (S.STOPPED, "archive"): S.ARCHIVED,
}


def test_compiled_table_is_exactly_the_product_table():
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("event", EVENTS)
def test_decide_follows_the_table_for_every_cell(status, event):
    subject = TransitionSubject("i", status.value, parent_status="ACTIVE")
    if (status, event) in EXPECTED:
        assert decide(subject, event) is EXPECTED[status, event]
    else:
        with pytest.raises(InvalidTransition):
            decide(subject, event)


def test_the_guards_raise_the_typed_errors():
    with pytest.raises(ParentNotActive):
        decide(TransitionSubject("i", "CREATED", parent_status="PAUSED"), "start")
    with pytest.raises(InstanceRunning):
        decide(TransitionSubject("i", "STOPPED", running_below=["c"]), "archive")


def test_event_to_names_the_one_event_between_two_statuses():
    assert event_to("i", "PAUSED", "ACTIVE") == "resume"
    with pytest.raises(InvalidTransition):
        event_to("i", "ARCHIVED", "ACTIVE")
