"""Page cursors: opaque strings that say where the last page ended.

A cursor holds the sort key of the last item a page returned, so the next page starts
right after it with an index seek: its cost is the page's, however deep into the list it
is, and items added or removed meanwhile neither repeat nor shift the rest (an offset
would). Four orders are paged this way:

- ``CREATED`` (created_at, id): lists, children, a project's instances;
- ``LEVEL`` (depth, created_at, id): descendants, level by level;
- ``SEQ`` (seq): an instance's history;
- ``ARCHIVED`` (archived_at, depth, id): a purge's candidates, where it goes on.

The text is URL-safe base64 of a small JSON array: the order, a tag of the list it pages
(``bound``: a short hash of, say, "children of X" or "instances with these filters"), and
the sort key. Callers must treat it as opaque. A cursor of another order or of another
list (an ``/instances`` cursor passed to ``/children``, or one parent's to another's),
text that is no cursor, and a key that is not what this service writes (an id that is
not a UUID, a time without an offset) are each a ValidationError naming ``after``.
``FIRST`` (the empty string) asks for the first page of a paging by cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
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


def bound(*what: Any) -> str:
    """The tag of one list: what it is ("children", "instances", ...) and what it is of
    (a parent's id, the filters), hashed short, so its cursors work for it alone."""
    text = json.dumps(list(what), separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(order: str, *key: Any, bound: str = "") -> str:
    """The cursor after an item whose sort key in ``order`` is ``key``, in the list
    ``bound`` names (see :func:`bound`)."""
    text = json.dumps([order, bound, *(k.isoformat() if isinstance(k, datetime) else k
                                       for k in key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, order: str, bound: str | None = None) -> list[Any]:
    """The sort key a cursor of ``order`` holds; with ``bound``, only a cursor of that list
    (None: any list of the order, for a caller that only reads the key back)."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad("is not a cursor this service gave") from None
    if not isinstance(value, list) or len(value) < 2 or not isinstance(value[1], str):
        raise _bad("is not a cursor this service gave")
    if value[0] != order or (bound is not None and value[1] != bound):
        raise _bad("is a cursor of another list")
    return value[2:]


def created_after(cursor: str | None, bound: str | None = None) -> tuple[datetime, str]:
    """(created_at, id) to page from: after the cursor, or before everything."""
    if not cursor:
        return EARLIEST, ""
    key = decode(cursor, CREATED, bound)
    _length(key, 2)
    return _time(key, 0), _id(key, 1)


def level_after(cursor: str | None, bound: str | None = None) -> tuple[int, datetime, str]:
    """(depth, created_at, id) to page from: after the cursor, or before everything."""
    if not cursor:
        return -1, EARLIEST, ""
    key = decode(cursor, LEVEL, bound)
    _length(key, 3)
    depth = key[0]
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise _bad("is not a cursor this service gave")
    return depth, _time(key, 1), _id(key, 2)


def seq_after(cursor: str | None, bound: str | None = None) -> int:
    """The seq to page from: after the cursor, or before every event."""
    if not cursor:
        return 0
    key = decode(cursor, SEQ, bound)
    _length(key, 1)
    if not isinstance(key[0], int) or isinstance(key[0], bool) or not 0 <= key[0] < 2**63:
        raise _bad("is not a cursor this service gave")
    return int(key[0])


def archived_after(cursor: str | None) -> tuple[str, int, str]:
    """(archived_at as ISO text, depth, id) a purge goes on after: after the cursor, or
    before every candidate for None."""
    if cursor is None:
        return ARCHIVED_START
    key = decode(cursor, ARCHIVED)
    _length(key, 3)
    depth = key[1]
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise _bad("is not a cursor this service gave")
    _time(key, 0)
    return str(key[0]), depth, _id(key, 2)


def _length(key: list[Any], size: int) -> None:
    if len(key) != size:
        raise _bad("is not a cursor this service gave")


def _id(key: list[Any], index: int) -> str:
    """An instance id a cursor holds: a UUID in its canonical form, as every id is."""
    text = _text(key, index)
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        canonical = None
    if canonical != text:
        raise _bad("holds an id that is not a UUID: it is not a cursor this service gave")
    return text


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
