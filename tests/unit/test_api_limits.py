"""The API's length limits are the library's: a request the library would take is never
refused by a schema that restated a limit and drifted from it (``reason`` once stopped at
1,000 characters in the API and 2,000 in the library)."""

from __future__ import annotations

import inspect

from marshmallow import Schema, validate

from api import schemas
from hopper_graph.cursors import MAX_CURSOR_LENGTH
from hopper_graph.labels import MAX_SELECTOR
from hopper_graph.rules import MAX_NAME_LENGTH, MAX_REASON_LENGTH, MAX_TEXT_LENGTH

LIBRARY_LIMITS = {"name": MAX_NAME_LENGTH, "reason": MAX_REASON_LENGTH,
                  "actor": MAX_TEXT_LENGTH, "project_id": MAX_TEXT_LENGTH,
                  "after": MAX_CURSOR_LENGTH, "origin": MAX_TEXT_LENGTH,
                  "selector": MAX_SELECTOR}
"""Each field the API bounds by length, and the library constant that bounds it there."""


def _length_limits() -> list[tuple[str, str, int | None]]:
    """(schema, field, max) for every validate.Length of every schema in api/schemas.py."""
    found = []
    for name, schema in inspect.getmembers(schemas, inspect.isclass):
        if not issubclass(schema, Schema) or schema.__module__ != schemas.__name__:
            continue
        for field_name, field in schema().fields.items():
            found += [(name, field_name, v.max) for v in field.validators
                      if isinstance(v, validate.Length)]
    return found


def test_every_length_limit_of_the_api_is_the_librarys():
    limits = _length_limits()
    assert {field for _, field, _ in limits} == set(LIBRARY_LIMITS)  # the walk found them
    for schema, field, maximum in limits:
        assert maximum == LIBRARY_LIMITS[field], f"{schema}.{field}"

