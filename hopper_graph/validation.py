"""What every marshmallow schema here shares, the library's (config, apply documents) and the
API's alike: a strict boolean, the "did you mean" hint for an unknown field, and
marshmallow's nested messages flattened into the ``{dotted path: [messages]}`` that
:class:`~hopper_graph.errors.ValidationError` carries. One copy, so a config key, a
document entry and a request body are refused in the same words.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import fields

UNKNOWN_FIELD = "Unknown field."
"""marshmallow's message for a key a schema does not declare."""
MAX_HINTED_NAME = 64
"""No field name is near a longer one: a long unknown key costs no string comparison."""
_WHOLE_KEYS = ("_schema", "")
"""Where marshmallow files a message about a whole (nested) object, not one of its keys."""


class StrictBoolean(fields.Boolean):
    """A JSON true or false, nothing else: "yes", 1 or "0" are type errors (``truthy={True}``
    alone still lets 1 and 0 in, since they equal True and False)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def unknown_field(name: str, known: Iterable[str]) -> str:
    """The message for ``name``, a key no field of ``known`` is: "Unknown field.", and the
    field meant when one is near it (a misspelling, or one of its words: ``type`` for
    ``instance_type``)."""
    if not 0 < len(name) <= MAX_HINTED_NAME:
        return UNKNOWN_FIELD
    candidates = sorted(known)
    close = difflib.get_close_matches(name, candidates, n=1) or [
        k for k in candidates if name.lower() in k.split("_")]
    return f"{UNKNOWN_FIELD} Did you mean {close[0]!r}?" if close else UNKNOWN_FIELD


def flatten_errors(messages: Any, prefix: str = "", *, whole: str = "_schema",
                   brackets: bool = False) -> dict[str, list[str]]:
    """marshmallow's nested ``messages`` as ``{"a.b": [...]}``, in marshmallow's order.

    Paths start with ``prefix``; a list index is written ``a.0``, or ``a[0]`` with
    ``brackets``; a message about a whole object goes to that object's path, and one about
    the root to ``whole`` (when ``prefix`` is empty). Walked without recursion."""
    flat: dict[str, list[str]] = {}
    stack: list[tuple[str, Any]] = [(prefix, messages)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            stack += reversed([(_join(path, key, brackets), sub) for key, sub in node.items()])
        elif isinstance(node, (list, tuple)):
            stack += reversed([(path, item) for item in node])
        else:
            flat.setdefault(path or whole, []).append(str(node))
    return flat


def extend_errors(into: dict[str, list[str]], more: Mapping[str, list[str]]) -> None:
    """Add ``more``'s messages to ``into``'s, path by path."""
    for path, messages in more.items():
        into.setdefault(path, []).extend(messages)


def _join(path: str, key: Any, brackets: bool) -> str:
    if key in _WHOLE_KEYS:
        return path
    if brackets and isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)
