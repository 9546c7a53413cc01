"""Cursors are bound to their list and ordering, and what they hold is checked (issue 24,
item 13); no database needed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from hopper_graph import cursors
from hopper_graph.errors import ValidationError

AT = datetime(2026, 1, 1, tzinfo=UTC)
ID = str(uuid.uuid4())


def test_a_cursor_pages_only_the_list_it_came_from():
    children = cursors.bound("children", ID)
    cursor = cursors.encode(cursors.CREATED, AT, ID, bound=children)
    assert cursors.created_after(cursor, children) == (AT, ID)
    for other in (cursors.bound("instances", None, None, None, None),
                  cursors.bound("children", str(uuid.uuid4()))):
        with pytest.raises(ValidationError) as err:
            cursors.created_after(cursor, other)
        assert "another list" in err.value.errors["after"][0]


@pytest.mark.parametrize("key", [
    (AT, "not-a-uuid"), (AT, ID.upper()), (AT, "{" + ID + "}"), (AT, 7), (AT,),
    (AT, ID, "extra"), ("yesterday", ID), (AT.replace(tzinfo=None), ID),
])
def test_a_cursor_holding_what_this_service_never_writes_is_refused(key):
    bound = cursors.bound("children", ID)
    with pytest.raises(ValidationError) as err:
        cursors.created_after(cursors.encode(cursors.CREATED, *key, bound=bound), bound)
    assert "after" in err.value.errors


def test_level_seq_and_archived_cursors_check_their_keys_too():
    bound = cursors.bound("descendants", ID)
    with pytest.raises(ValidationError):
        cursors.level_after(cursors.encode(cursors.LEVEL, 1, AT, "x", bound=bound), bound)
    with pytest.raises(ValidationError):
        cursors.seq_after(cursors.encode(cursors.SEQ, -1, bound="h"), "h")
    with pytest.raises(ValidationError):
        cursors.archived_after(cursors.encode(cursors.ARCHIVED, AT, 1, "x"))
    assert cursors.seq_after(cursors.encode(cursors.SEQ, 5, bound="h"), "h") == 5
