"""Enums (values equal names) and the model: to_dict's shape, and rows built back into
instances exactly as the repository stores them."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from neo4j.time import DateTime

from hopper_graph.enums import (
    ALLOWED_PARENT_SCOPES,
    DEFAULT_INSTANCE_TYPE,
    HopperScope,
    InstanceStatus,
    InstanceType,
)
from hopper_graph.models import HopperInstance, InstanceEvent
from hopper_graph.rows import (
    INSTANCE_COLUMNS,
    event_from_row,
    instance_from_row,
    instances_from_columns,
)

# RFC 3339 date-time: a "T", seconds, optional fraction and a mandatory offset (Z or +hh:mm).
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


# -- enums ----------------------------------------------------------------------------------


@pytest.mark.parametrize("enum", [HopperScope, InstanceStatus, InstanceType])
def test_every_value_equals_its_upper_case_name(enum):
    for member in enum:
        assert member.value == member.name == member.name.upper()
        assert str(member) == member.name
        assert f"{member}" == member.name
        assert enum(member.name) is member


def test_the_members_are_exactly_the_specified_ones():
    assert [s.name for s in HopperScope] == ["GLOBAL", "PROJECT", "ORCHESTRATION"]
    assert [s.name for s in InstanceStatus] == ["CREATED", "ACTIVE", "PAUSED", "STOPPED",
                                                 "ARCHIVED"]
    assert [t.name for t in InstanceType] == ["SINGLETON", "PERSISTENT", "EPHEMERAL"]


def test_values_are_plain_strings_in_json():
    assert json.dumps([HopperScope.PROJECT, InstanceStatus.ACTIVE]) == '["PROJECT", "ACTIVE"]'


@pytest.mark.parametrize("bad", ["global", "Global", "", "WORKER"])
def test_only_the_upper_case_name_is_accepted(bad):
    with pytest.raises(ValueError):
        HopperScope(bad)


def test_each_scope_has_its_own_description():
    descriptions = {scope: scope.description for scope in HopperScope}
    assert all(isinstance(d, str) and d.strip() for d in descriptions.values())
    assert len(set(descriptions.values())) == len(HopperScope)
    assert "root" in HopperScope.GLOBAL.description.lower()


def test_scope_ranks_order_global_above_project_above_orchestration():
    assert [s.rank for s in HopperScope] == [0, 1, 2]
    assert HopperScope.GLOBAL.rank < HopperScope.PROJECT.rank < HopperScope.ORCHESTRATION.rank


def test_allowed_parents_never_rank_below_the_child():
    for child, parents in ALLOWED_PARENT_SCOPES.items():
        assert all(parent.rank <= child.rank for parent in parents)
    assert ALLOWED_PARENT_SCOPES[HopperScope.GLOBAL] == frozenset()
    assert ALLOWED_PARENT_SCOPES[HopperScope.PROJECT] == {HopperScope.GLOBAL, HopperScope.PROJECT}
    assert ALLOWED_PARENT_SCOPES[HopperScope.ORCHESTRATION] == {
        HopperScope.PROJECT, HopperScope.ORCHESTRATION}


def test_default_instance_type_per_scope():
    assert DEFAULT_INSTANCE_TYPE == {
        HopperScope.GLOBAL: InstanceType.SINGLETON,
        HopperScope.PROJECT: InstanceType.PERSISTENT,
        HopperScope.ORCHESTRATION: InstanceType.EPHEMERAL,
    }


def test_only_active_and_paused_are_running():
    assert {s for s in InstanceStatus if s.is_running} == {InstanceStatus.ACTIVE,
                                                          InstanceStatus.PAUSED}


# -- the model ------------------------------------------------------------------------------


def make_instance(**changes) -> HopperInstance:
    values = dict(
        id=str(uuid.uuid4()), name="alpha", scope=HopperScope.PROJECT,
        status=InstanceStatus.ACTIVE, instance_type=InstanceType.PERSISTENT,
        parent_id=str(uuid.uuid4()), project_id="proj-1",
        config={"tags": ["web"], "limits": {"max_child_instances": 3}},
        metadata={"owner": "ops", "nested": {"list": [1, 2.5, "x", None, True]}},
        created_at=T0, updated_at=T0 + timedelta(seconds=1),
        started_at=T0 + timedelta(seconds=2), stopped_at=None, archived_at=None,
        version=4, depth=1, config_set={"tags": ["web"]},
    )
    values.update(changes)
    return HopperInstance(**values)


def stored_row(instance: HopperInstance) -> dict:
    """The node's properties as the repository writes them and the driver reads them back:
    maps as JSON strings, times as neo4j DateTime, absent optional times missing."""
    row = {
        "id": instance.id, "name": instance.name, "scope": instance.scope.value,
        "status": instance.status.value, "instance_type": instance.instance_type.value,
        "parent_id": instance.parent_id, "project_id": instance.project_id,
        "config": json.dumps(instance.config), "config_set": json.dumps(instance.config_set),
        "metadata": json.dumps(instance.metadata), "version": instance.version,
        "depth": instance.depth,
    }
    for name in ("created_at", "updated_at", "started_at", "stopped_at", "archived_at",
                 "heartbeat_at"):
        value = getattr(instance, name)
        if value is not None:
            row[name] = DateTime.from_native(value)
    return row


def test_to_dict_is_json_ready_with_string_enums():
    instance = make_instance()
    data = instance.to_dict()
    expected_keys = {"id", "name", "scope", "status", "instance_type", "parent_id",
                     "project_id", "config", "metadata", "created_at", "updated_at",
                     "started_at", "stopped_at", "archived_at", "version", "depth"}
    assert expected_keys <= data.keys()
    assert "_repository" not in data
    assert (data["scope"], data["status"], data["instance_type"]) == (
        "PROJECT", "ACTIVE", "PERSISTENT")
    assert all(type(data[k]) is str for k in ("scope", "status", "instance_type"))
    assert data["config"] == instance.config and data["metadata"] == instance.metadata
    assert (data["version"], data["depth"]) == (4, 1)
    assert json.loads(json.dumps(data)) == data


def test_to_dict_times_are_rfc3339_with_offset_and_none_stays_none():
    data = make_instance().to_dict()
    for key in ("created_at", "updated_at", "started_at"):
        assert RFC3339.match(data[key]), data[key]
        parsed = datetime.fromisoformat(data[key])
        assert parsed.utcoffset() is not None
    assert data["created_at"] == "2024-05-06T07:08:09.123456+00:00"
    assert datetime.fromisoformat(data["updated_at"]) == T0 + timedelta(seconds=1)
    assert data["stopped_at"] is None and data["archived_at"] is None
    assert data["heartbeat_at"] is None


def test_to_dict_keeps_a_non_utc_offset():
    plus_two = timezone(timedelta(hours=2))
    data = make_instance(created_at=datetime(2024, 1, 1, 12, tzinfo=plus_two)).to_dict()
    assert data["created_at"] == "2024-01-01T12:00:00+02:00"


def test_global_root_to_dict_has_null_parent_and_project():
    data = make_instance(scope=HopperScope.GLOBAL, instance_type=InstanceType.SINGLETON,
                         parent_id=None, project_id=None, depth=0).to_dict()
    assert data["parent_id"] is None and data["project_id"] is None
    assert data["instance_type"] == "SINGLETON"


def test_instance_from_row_round_trips_exactly():
    original = make_instance(heartbeat_at=T0 + timedelta(minutes=5))
    again = instance_from_row(stored_row(original))
    assert again == original
    assert again.to_dict() == original.to_dict()
    assert again.config_set == original.config_set
    assert again.heartbeat_at == original.heartbeat_at
    assert isinstance(again.scope, HopperScope) and isinstance(again.status, InstanceStatus)
    assert isinstance(again.instance_type, InstanceType)
    for name in ("created_at", "updated_at", "started_at", "heartbeat_at"):
        value = getattr(again, name)
        assert type(value) is datetime, name
        assert value.utcoffset() == timedelta(0), name


def test_instance_from_row_defaults_missing_optional_properties():
    row = stored_row(make_instance(started_at=None))
    for key in ("config", "config_set", "metadata", "depth", "parent_id", "project_id"):
        del row[key]
    instance = instance_from_row(row)
    assert instance.config == {} and instance.metadata == {} and instance.config_set == {}
    assert instance.depth == 0
    assert instance.parent_id is None and instance.project_id is None
    assert instance.started_at is None and instance.heartbeat_at is None


def test_instance_from_row_accepts_plain_datetimes():
    row = stored_row(make_instance())
    row["created_at"] = T0
    assert instance_from_row(row).created_at == T0


def test_nested_config_and_metadata_round_trip_through_json():
    deep = {"a": {"b": {"c": [1, {"d": "zürich ✓"}]}}, "empty": {}, "f": 1.5, "n": None}
    original = make_instance(metadata=deep)
    assert instance_from_row(stored_row(original)).metadata == deep


def test_equality_compares_fields_not_the_repository_and_instances_are_unhashable():
    a = make_instance()
    b = instance_from_row(stored_row(a), repository=object())  # type: ignore[arg-type]
    assert a == b
    assert a != instance_from_row(stored_row(make_instance(id=a.id, version=5)))
    assert a.__eq__("not an instance") is NotImplemented
    with pytest.raises(TypeError):
        hash(a)


def test_hierarchy_helpers_need_a_repository():
    instance = make_instance()
    with pytest.raises(RuntimeError, match="not loaded through a repository"):
        instance.get_ancestors()
    with pytest.raises(RuntimeError, match="not loaded through a repository"):
        instance.get_descendants()


def test_hierarchy_helpers_delegate_to_the_repository_in_one_call():
    calls = []

    class FakeRepository:
        def get_ancestors(self, instance_id):
            calls.append(("ancestors", instance_id))
            return ["parent"]

        def get_descendants(self, instance_id):
            calls.append(("descendants", instance_id))
            return ["child"]

    instance = instance_from_row(stored_row(make_instance()), FakeRepository())  # type: ignore[arg-type]
    assert instance.get_ancestors() == ["parent"]
    assert instance.get_descendants() == ["child"]
    assert calls == [("ancestors", instance.id), ("descendants", instance.id)]


def test_event_round_trip_and_to_dict():
    row = {"id": str(uuid.uuid4()), "seq": 7, "instance_id": str(uuid.uuid4()),
           "event": "stop", "from_status": "ACTIVE", "to_status": "STOPPED", "actor": "ops",
           "reason": "done", "cause": None, "at": DateTime.from_native(T0)}
    event = event_from_row(row)
    assert isinstance(event, InstanceEvent)
    assert event.from_status is InstanceStatus.ACTIVE and event.to_status is InstanceStatus.STOPPED
    data = event.to_dict()
    assert data == {**row, "at": "2024-05-06T07:08:09.123456+00:00"}
    assert RFC3339.match(data["at"])


def test_create_event_has_no_from_status():
    row = {"id": "e", "seq": 1, "instance_id": "i", "event": "create", "from_status": None,
           "to_status": "CREATED", "at": DateTime.from_native(T0)}
    event = event_from_row(row)
    assert event.from_status is None and event.to_status is InstanceStatus.CREATED
    assert event.actor is None and event.reason is None and event.cause is None
    assert event.to_dict()["from_status"] is None


def test_gc_paused_restores_the_collector_as_it_found_it():
    import gc

    from hopper_graph.gcpause import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # overlapping use: the outer one still needs it paused
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # the application had turned it off: it stays off
    finally:
        gc.enable()


def test_columns_with_empty_text_for_null_read_back_as_the_instances_they_hold():
    """instance_columns_of_rows answers '' where a property is null (collect() would drop a
    null and shift the column): '' reads as None, and a row whose id is '' (an instance
    deleted as the query read it) is left out."""
    top = make_instance(scope=HopperScope.GLOBAL, parent_id=None, project_id=None,
                        started_at=None, depth=0)
    run = make_instance(heartbeat_at=T0 + timedelta(seconds=5))
    gone = ["", "", "", "", "", "", "", "", "", "", "", 0, 0, "", "", "", "", "", ""]

    def cells(i: HopperInstance) -> list:
        return [i.id, i.name, i.scope.value, i.status.value, i.instance_type.value,
                i.parent_id or "", i.project_id or "", json.dumps(i.config),
                json.dumps(i.config_set), json.dumps(i.metadata), json.dumps(i.labels),
                i.version, i.depth,
                *[(getattr(i, t).isoformat() if getattr(i, t) else "") for t in (
                    "created_at", "updated_at", "started_at", "stopped_at", "archived_at",
                    "heartbeat_at")]]
    rows = [cells(top), gone, cells(run)]
    columns = {name: [r[k] for r in rows] for k, name in enumerate(INSTANCE_COLUMNS)}
    read = instances_from_columns(columns)
    assert read == [top, run]
    assert (read[0].parent_id, read[0].project_id, read[0].started_at) == (None, None, None)
    assert read[1].heartbeat_at == T0 + timedelta(seconds=5)
