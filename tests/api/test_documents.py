"""The hand-written instance JSON of list and tree responses says what InstanceSchema says."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from api.render import instance_document
from api.schemas import InstanceSchema
from hopper_graph import InstanceManager
from tests.factories import make_global, make_orchestration, make_project

URL = "/api/v1/instances"

METADATA = {"owner": "ops é 漢", "nested": {"list": [1, 2.5, "x", None, True]}, "z": {}}


@pytest.fixture
def family(app, database):
    lib = InstanceManager(app.extensions["hopper_graph"].driver, database)
    g = make_global(lib, name="g")
    p = make_project(lib, g, name="p", metadata=METADATA,
                     config={"tags": ["a", "b"], "limits": {"max_child_instances": 7}})
    r = make_orchestration(lib, p, name="r")
    lib.start(g.id)
    lib.start(p.id)
    lib.start(r.id)
    lib.stop(r.id)
    return lib, g


def _same_as_schema(instance):
    """The fast document and the schema's dump, each through a JSON round trip."""
    fast = orjson.loads(orjson.dumps(instance_document(instance)))
    return fast, orjson.loads(orjson.dumps(InstanceSchema().dump(instance)))


def test_documents_of_undecoded_and_decoded_instances_match_the_schema(family):
    lib, g = family
    for instance in [*lib.repository.get_descendants(g.id), lib.get(g.id)]:
        fast, schema = _same_as_schema(instance)  # config still JSON text here
        assert fast == schema
        assert instance.config and instance.metadata is not None  # now decoded
        fast, schema = _same_as_schema(instance)
        assert fast == schema
    assert {k for k in fast} == set(InstanceSchema().fields)


def test_a_changed_config_is_sent_as_changed(family):
    lib, g = family
    instance = lib.repository.get_descendants(g.id)[0]
    instance.config = {"tags": ["changed"]}
    assert orjson.loads(orjson.dumps(instance_document(instance)))["config"] == {
        "tags": ["changed"]}


def test_times_and_enums_are_written_as_the_schema_writes_them(family):
    """instance_document hands datetimes and enums to orjson as they are: whole seconds
    (no fraction), a single microsecond and every enum must come out as the schema's."""
    lib, g = family
    instance = lib.repository.get_descendants(g.id)[-1]
    instance.started_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    instance.stopped_at = datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC)
    fast, schema = _same_as_schema(instance)
    assert fast == schema
    assert (fast["started_at"], fast["stopped_at"]) == (
        "2026-01-02T03:04:05+00:00", "2026-01-02T03:04:05.000001+00:00")
    assert (fast["scope"], fast["status"], fast["instance_type"]) == (
        "ORCHESTRATION", "ARCHIVED", "EPHEMERAL")  # a stopped EPHEMERAL run is archived


def test_tree_and_page_bodies_carry_what_get_returns(client, family):
    _, g = family
    flat = client.get(f"{URL}/{g.id}/tree?format=flat").get_json()
    nested = client.get(f"{URL}/{g.id}/tree").get_json()
    page = client.get(f"{URL}/{g.id}/descendants").get_json()
    for item in flat["items"]:
        single = client.get(f"{URL}/{item['instance']['id']}").get_json()
        assert item["instance"] == single
    assert nested["tree"]["instance"] == flat["items"][0]["instance"]
    assert page["items"] == [row["instance"] for row in flat["items"][1:]]
    assert any(i["metadata"] == METADATA for i in page["items"])
