"""INSTANCE_FIELDS is the one list of an instance's fields: every place that lists them
again is checked against it here, so a field added there and forgotten anywhere fails.

Each place has a check that takes the list of fields it must agree with. The real list
passes every check; the real list plus one field of each kind fails every check, so no
place is left unguarded (and no check passes whatever it is given).
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marshmallow import fields as marshmallow_fields

from api.schemas import InstanceSchema
from hopper_graph import models, repository, rows, rules, transfer
from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType
from hopper_graph.fields import INSTANCE_FIELDS, Field
from hopper_graph.models import HopperInstance, InstanceSpec
from hopper_graph.queries import QUERIES

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
EXTRA = (Field("extra_text", "text", stored=True, in_api=True),
         Field("extra_at", "time", stored=True, in_api=True),
         Field("extra_json", "json", stored=True, in_api=True))
"""One more field of each kind a place may list on its own (all, times, maps)."""
SAMPLE = HopperInstance(
    id=str(uuid.uuid4()), name="alpha", scope=HopperScope.PROJECT,
    status=InstanceStatus.STOPPED, instance_type=InstanceType.PERSISTENT,
    parent_id=str(uuid.uuid4()), project_id="proj-1", config={"tags": ["web"], "x": 1},
    metadata={"owner": "ops"}, created_at=T0, updated_at=T0 + timedelta(seconds=1),
    started_at=T0 + timedelta(seconds=2), stopped_at=T0 + timedelta(seconds=3),
    archived_at=T0 + timedelta(seconds=4), version=4, depth=2,
    config_set={"tags": ["web"]}, heartbeat_at=T0 + timedelta(seconds=5))
"""An instance with every field set, each to a value no other field holds."""


def names(fields: Sequence[Field], *, stored: bool | None = None, in_api: bool | None = None,
          kind: str | None = None) -> tuple[str, ...]:
    """The names of the fields that match, in the list's order."""
    return tuple(f.name for f in fields if (stored is None or f.stored == stored)
                 and (in_api is None or f.in_api == in_api) and (kind is None or f.kind == kind))


def stored_value(instance: HopperInstance, field: Field) -> Any:
    """A field's value as a query hands it over: enums as values, maps as JSON text,
    times as ISO-8601 text."""
    value = getattr(instance, field.name, None)
    if value is None:
        return None
    if field.kind == "enum":
        return value.value
    if field.kind == "json":
        return json.dumps(value)
    return value.isoformat() if field.kind == "time" else value


def read_back(instance: HopperInstance, fields: Sequence[Field]) -> set[str]:
    """The stored fields ``instance`` holds with SAMPLE's values."""
    return {n for n in names(fields, stored=True)
            if hasattr(instance, n) and getattr(instance, n) == getattr(SAMPLE, n)}


class RecordingRow(dict[str, Any]):
    """A row that notes the keys read from it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def parameters(function: Callable[..., Any], *leave_out: str) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(function).parameters if p not in leave_out)


def aliases(fragment: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\bAS (\w+)", QUERIES.fragments[fragment].text))


# -- the places, one check each ---------------------------------------------------------------
def check_slots(fields: Sequence[Field]) -> None:
    maps = names(fields, kind="json")
    plain = set(names(fields, stored=True)) - set(maps)
    assert set(HopperInstance.__slots__) == {"_repository", *plain, *(f"_{n}" for n in maps),
                                             *(f"_{n}_json" for n in maps)}


def check_init(fields: Sequence[Field]) -> None:
    assert set(parameters(HopperInstance, "_repository")) == set(names(fields, stored=True))


def check_from_stored(fields: Sequence[Field]) -> None:
    assert parameters(HopperInstance.from_stored, "repository") == names(fields, stored=True)


def check_to_dict(fields: Sequence[Field]) -> None:
    assert set(SAMPLE.to_dict()) == set(names(fields, in_api=True))


def check_compared(fields: Sequence[Field]) -> None:
    assert names(fields, in_api=True) == models._COMPARED


def check_instance_from_row(fields: Sequence[Field]) -> None:
    row = RecordingRow({f.name: stored_value(SAMPLE, f) for f in fields if f.stored})
    instance = rows.instance_from_row(row)
    assert row.read == set(names(fields, stored=True))
    assert read_back(instance, fields) == set(names(fields, stored=True))


def check_instances_from_columns(fields: Sequence[Field]) -> None:
    record = {f.name: [stored_value(SAMPLE, f)] for f in fields if f.stored}
    assert names(fields, stored=True) == rows.INSTANCE_COLUMNS
    [instance] = rows.instances_from_columns(record)
    assert read_back(instance, fields) == set(names(fields, stored=True))


def check_rules_fields(fields: Sequence[Field]) -> None:
    assert names(fields, in_api=True) == rules.FIELDS


def check_new_props(fields: Sequence[Field]) -> None:
    """The create query adds the timestamps; new_props gives every other property."""
    spec = InstanceSpec("alpha", HopperScope.GLOBAL, instance_type=InstanceType.SINGLETON)
    props = rules.new_props(spec, None, 0)
    stored = names(fields, stored=True)
    assert set(props) == set(stored) - set(names(fields, kind="time"))


def check_repository_lean_columns(fields: Sequence[Field]) -> None:
    assert names(fields, kind="time", in_api=True) == repository._TIME_FIELDS
    assert names(fields, kind="json", in_api=True) == repository._JSON_FIELDS


def check_transfer(fields: Sequence[Field]) -> None:
    assert set(names(fields, kind="json", stored=True)) == transfer.JSON_PROPERTIES
    assert transfer.DEFAULT_DATETIME_PROPERTIES["instances"] == sorted(
        names(fields, kind="time", stored=True))


SCHEMA_KINDS = {marshmallow_fields.UUID: "id", marshmallow_fields.String: "text",
                marshmallow_fields.Enum: "enum", marshmallow_fields.Dict: "json",
                marshmallow_fields.DateTime: "time", marshmallow_fields.Integer: "int"}


def check_instance_schema(fields: Sequence[Field]) -> None:
    """The API's document of an instance: every field of the document, each of its kind
    (api/render.py's instance_document is held to this schema by tests/api/test_documents)."""
    declared = InstanceSchema().fields
    assert {n: SCHEMA_KINDS[type(f)] for n, f in declared.items()} == {
        f.name: f.kind for f in fields if f.in_api}


def check_instance_map(fields: Sequence[Field]) -> None:
    """``n {.*}`` gives every property; only the times are written out, as text."""
    text = QUERIES.fragments["instance_map"].text
    assert tuple(re.findall(r"(\w+): toString", text)) == names(fields, kind="time")


def check_instance_columns(fields: Sequence[Field]) -> None:
    assert aliases("instance_columns") == names(fields, stored=True)


def check_instance_columns_of_rows(fields: Sequence[Field]) -> None:
    assert aliases("instance_columns_of_rows") == names(fields, stored=True)


def check_selected_columns(fields: Sequence[Field]) -> None:
    assert aliases("selected_columns") == names(fields, stored=True, in_api=True)


PLACES = [check_slots, check_init, check_from_stored, check_to_dict, check_compared,
          check_instance_from_row, check_instances_from_columns, check_rules_fields,
          check_new_props, check_repository_lean_columns, check_transfer,
          check_instance_schema, check_instance_map, check_instance_columns,
          check_instance_columns_of_rows, check_selected_columns]


@pytest.mark.parametrize("check", PLACES, ids=lambda c: c.__name__.removeprefix("check_"))
def test_the_place_lists_the_instance_fields(check):
    check(INSTANCE_FIELDS)


@pytest.mark.parametrize("check", PLACES, ids=lambda c: c.__name__.removeprefix("check_"))
def test_the_place_fails_for_a_field_it_does_not_list(check):
    with pytest.raises(AssertionError):
        check(INSTANCE_FIELDS + EXTRA)


def test_the_fields_are_named_once_and_of_a_known_kind():
    assert len({f.name for f in INSTANCE_FIELDS}) == len(INSTANCE_FIELDS)
    assert {f.kind for f in INSTANCE_FIELDS} <= set(SCHEMA_KINDS.values())


# -- equality ----------------------------------------------------------------------------------
def changed(field: Field) -> Any:
    """A value of ``field`` other than SAMPLE's."""
    value = getattr(SAMPLE, field.name)
    if field.kind == "enum":
        return next(m for m in type(value) if m is not value)
    if field.kind == "time":
        return value + timedelta(minutes=1)
    if field.kind == "json":
        return {**value, "changed": True}
    if field.kind == "id":
        return str(uuid.uuid4())
    return value + 1 if field.kind == "int" else value + "-changed"


def copy_of(instance: HopperInstance, **changes: Any) -> HopperInstance:
    values = {n: getattr(instance, n) for n in parameters(HopperInstance, "_repository")}
    return HopperInstance(**{**values, **changes})


def test_instances_differing_only_in_heartbeat_at_are_not_equal():
    """heartbeat_at is part of the document (and a heartbeat leaves the version as it was),
    so two reads either side of a heartbeat are different instances."""
    assert copy_of(SAMPLE, heartbeat_at=None) != SAMPLE
    assert copy_of(SAMPLE, heartbeat_at=T0 + timedelta(hours=1)) != SAMPLE


@pytest.mark.parametrize("field", [f for f in INSTANCE_FIELDS if f.stored],
                         ids=lambda f: f.name)
def test_instances_are_equal_exactly_when_their_documents_are(field):
    other = copy_of(SAMPLE, **{field.name: changed(field)})
    assert copy_of(SAMPLE) == SAMPLE
    assert (other == SAMPLE) == (other.to_dict() == SAMPLE.to_dict())
    assert (other == SAMPLE) is (not field.in_api)
