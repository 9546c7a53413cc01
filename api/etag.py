"""ETags and If-Match: an instance's ETag is its version, quoted (``"3"``), and once its
runner has sent a heartbeat, the version and the heartbeat's time (``"3-1765080000123456"``,
microseconds since the epoch). A heartbeat changes the document (its ``heartbeat_at``) but
not the version: the tag tells a cache the document changed, and If-Match, which guards
edits, reads only the version in it, so a heartbeat never fails a writer's If-Match. A
write that names versions in If-Match goes ahead only at one of them, and a GET whose
If-None-Match holds the ETag about to be sent is answered 304."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import Response, request
from werkzeug.exceptions import PreconditionFailed

from hopper_graph import HopperInstance

ETAG_HEADER = {"description": 'The instance\'s version, quoted: "3"; after a heartbeat, the '
                              'version and the heartbeat\'s microseconds: "3-1765080000123456".',
               "schema": {"type": "string"}}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "The ETag you last saw; the change applies only at that version "
                           "(412 otherwise)."}


def etag(instance: HopperInstance) -> dict[str, str]:
    beat = instance.heartbeat_at
    if beat is None:
        return {"ETag": f'"{instance.version}"'}
    micros = (beat - _EPOCH) // timedelta(microseconds=1)
    return {"ETag": f'"{instance.version}-{micros}"'}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


MAX_VERSION_DIGITS = 18
"""A version is a 64-bit integer in Neo4j; a longer tag can name none (and must not reach
the driver)."""


def expected_version(instance_id: str) -> frozenset[int] | None:
    """The versions If-Match names: None without the header or with ``*`` (any existing
    instance matches); 412 when it names no version at all.

    Tags are compared as RFC 9110 says for If-Match: strongly, character by character, so
    ``"01"`` is not the ETag ``"1"``, a weak tag ``W/"1"`` matches nothing, and so do an
    unquoted ``1`` and a header that is no list of entity tags. Every version the list
    names is handed to the write, which checks the instance is at one of them in the
    statement that writes: nothing is read before it (``instance_id`` names the instance
    in the error only).
    """
    fields = request.headers.getlist("If-Match")
    if not fields:
        return None
    value = ", ".join(fields)
    if value.strip(" \t") == "*":
        return None
    tags = strong_entity_tags(value)
    versions = frozenset(int(version) for version in map(_version_of, tags or ())
                         if _is_version(version))
    if not versions:
        raise PreconditionFailed(f"If-Match names no version of instance {instance_id} "
                                 '(ETags are quoted decimal versions: "3").')
    return versions


_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(,|\Z)')
"""One element of an RFC 9110 list of entity tags (empty elements allowed), and its comma."""


def strong_entity_tags(value: str) -> tuple[str, ...] | None:
    """The opaque parts of the strong tags in a list of entity tags (weak ones dropped:
    they never match strongly), or None when the value is no such list (``*`` included)."""
    tags: list[str] = []
    pos, end = 0, len(value)
    while pos <= end:
        match = _ELEMENT.match(value, pos)
        if match is None:
            return None
        weak, tag, comma = match.groups()
        if tag is not None and not weak:
            tags.append(tag)
        if not comma:
            break
        pos = match.end()
    return tuple(tags)


def _version_of(tag: str) -> str:
    """The version part of an ETag: all of ``"3"``, the part before the dash of
    ``"3-1765080000123456"`` (a heartbeat's time, which If-Match does not compare)."""
    version, dash, beat = tag.partition("-")
    return version if not dash or _digits(beat) else ""


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _is_version(tag: str) -> bool:
    """Whether ``tag`` is exactly how an ETag writes a version: decimal ASCII digits without
    a leading zero, short enough for a 64-bit integer."""
    return (0 < len(tag) <= MAX_VERSION_DIGITS and tag.isascii() and tag.isdigit()
            and (tag == "0" or not tag.startswith("0")))


def conditional_get(response: Response) -> Response:
    """Answer 304 to a GET whose If-None-Match holds the ETag about to be sent."""
    if request.method == "GET" and response.status_code == 200 and "ETag" in response.headers:
        response.make_conditional(request)
    return response
