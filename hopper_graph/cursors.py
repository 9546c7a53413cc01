"""Page cursors: opaque strings that say where the last page ended.

A cursor holds the sort key of the last item a page returned, so the next page starts
right after it with an index seek: its cost is the page's, however deep into the list it
is, and items added or removed meanwhile neither repeat nor shift the rest (an offset
would). Four orders are paged this way:

- ``CREATED`` (created_at, id): lists, children, a project's instances;
- ``LEVEL`` (depth, created_at, id): descendants, level by level;
- ``SEQ`` (seq): an instance's history;
- ``ARCHIVED`` (archived_at, depth, id): a purge's candidates, where it goes on.

The text is URL-safe base64 of a small JSON array; callers must treat it as opaque. A
cursor of another order, or text that is no cursor, is a ValidationError naming ``after``.
``FIRST`` (the empty string) asks for the first page of a paging by cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from hopper_graph.errors import ValidationError

CREATED, LEVEL, SEQ, ARCHIVED = "c", "l", "s", "a"
FIRST = ""
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
"""Before any instance's created_at: the first page's position in creation order."""
MAX_CURSOR_LENGTH = 512
ARCHIVED_START = ("0001-01-01T00:00:00Z", 2**62, "")
"""Before every purge candidate: no archived_at is earlier (and the depth bound never binds)."""


def encode(order: str, *key: Any) -> str:
    """The cursor after an item whose sort key in ``order`` is ``key``."""
    text = json.dumps([order, *(k.isoformat() if isinstance(k, datetime) else k
                                for k in key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, order: str) -> list[Any]:
    """The sort key a cursor of ``order`` holds."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad("is not a cursor this service gave") from None
    if not isinstance(value, list) or not value or value[0] != order:
        raise _bad("is a cursor of another list")
    return value[1:]


def created_after(cursor: str | None) -> tuple[datetime, str]:
    """(created_at, id) to page from: after the cursor, or before everything."""
    if not cursor:
        return EARLIEST, ""
    key = decode(cursor, CREATED)
    return _time(key, 0), _text(key, 1)


def level_after(cursor: str | None) -> tuple[int, datetime, str]:
    """(depth, created_at, id) to page from: after the cursor, or before everything."""
    if not cursor:
        return -1, EARLIEST, ""
    key = decode(cursor, LEVEL)
    depth = key[0] if len(key) == 3 else None
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise _bad("is not a cursor this service gave")
    return depth, _time(key, 1), _text(key, 2)


def seq_after(cursor: str | None) -> int:
    """The seq to page from: after the cursor, or before every event."""
    if not cursor:
        return 0
    key = decode(cursor, SEQ)
    if len(key) != 1 or not isinstance(key[0], int) or isinstance(key[0], bool):
        raise _bad("is not a cursor this service gave")
    return int(key[0])


def archived_after(cursor: str | None) -> tuple[str, int, str]:
    """(archived_at as ISO text, depth, id) a purge goes on after: after the cursor, or
    before every candidate for None."""
    if cursor is None:
        return ARCHIVED_START
    key = decode(cursor, ARCHIVED)
    depth = key[1] if len(key) == 3 else None
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise _bad("is not a cursor this service gave")
    _time(key, 0)
    return str(key[0]), depth, _text(key, 2)


def _time(key: list[Any], index: int) -> datetime:
    try:
        value = datetime.fromisoformat(key[index])
    except (IndexError, TypeError, ValueError):
        raise _bad("is not a cursor this service gave") from None
    if value.tzinfo is None:
        raise _bad("is not a cursor this service gave")
    return value


def _text(key: list[Any], index: int) -> str:
    if len(key) <= index or not isinstance(key[index], str):
        raise _bad("is not a cursor this service gave")
    return str(key[index])


def _bad(what: str) -> ValidationError:
    return ValidationError(f"after {what}", errors={"after": [
        f"{what}: pass the `next` of the previous page, or an empty value for the first"]})
