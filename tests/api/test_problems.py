"""Problems that name what they are about (issue 14): the instance in the way, the field that
was meant, one title per code, enum values as text in any letter case, and a plain 404 for
what is no instance path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import errors as api_errors
from api import schemas
from hopper_graph import (
    DuplicateName,
    GlobalAlreadyExists,
    HopperGraphError,
    InstanceSpec,
    ParentNotActive,
)
from tests.api.conftest import assert_problem
from tests.factories import make_global, make_project

URL = "/api/v1/instances"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


# -- the instance in the way --------------------------------------------------------------
def test_a_second_global_names_the_first(client, h):
    g = h.global_()
    body = assert_problem(client.post(URL, json={"name": "other", "scope": "GLOBAL"}), 409,
                          "global-already-exists")
    assert body["existing_id"] == g["id"]
    assert g["id"] in body["detail"]
    same_name = client.post(URL, json={"name": "global", "scope": "GLOBAL"})
    assert assert_problem(same_name, 409, "global-already-exists")["existing_id"] == g["id"]


def test_a_taken_name_names_its_holder(client, h):
    g = h.global_()
    alpha, beta = h.project(g, "alpha"), h.project(g, "beta")
    body = assert_problem(client.post(URL, json={"name": "alpha", "scope": "PROJECT",
                                                 "parent_id": g["id"], "project_id": "x"}),
                          409, "duplicate-name")
    assert (body["name"], body["scope"], body["existing_id"]) == ("alpha", "PROJECT",
                                                                  alpha["id"])
    assert alpha["id"] in body["detail"] and "'alpha'" in body["detail"]
    renamed = assert_problem(client.patch(f"{URL}/{beta['id']}", json={"name": "alpha"}), 409,
                             "duplicate-name")
    assert renamed["existing_id"] == alpha["id"]
    h.event(g, "start")
    with_status = client.patch(f"{URL}/{beta['id']}", json={"name": "alpha",
                                                            "status": "ACTIVE"})
    assert assert_problem(with_status, 409, "duplicate-name")["existing_id"] == alpha["id"]
    assert client.get(f"{URL}/{beta['id']}").get_json()["status"] == "CREATED"


def test_a_parent_not_active_is_named_with_its_status(client, h):
    g, p, r = h.chain()
    body = assert_problem(client.post(f"{URL}/{p['id']}/start"), 409, "parent-not-active")
    assert (body["parent_id"], body["parent_status"]) == (g["id"], "CREATED")
    assert (body["id"], body["current_status"]) == (p["id"], "CREATED")
    assert g["id"] in body["detail"]
    h.event(g, "start")
    via_patch = client.patch(f"{URL}/{r['id']}", json={"status": "ACTIVE"})
    body = assert_problem(via_patch, 409, "parent-not-active")
    assert (body["parent_id"], body["parent_status"]) == (p["id"], "CREATED")


def test_the_library_errors_carry_the_same_facts(manager):
    g = make_global(manager, name="g")
    p = make_project(manager, g, name="p")
    with pytest.raises(GlobalAlreadyExists) as second:
        manager.create(name="g2", scope="GLOBAL")
    assert second.value.existing_id == g.id
    with pytest.raises(DuplicateName) as taken:
        manager.create(InstanceSpec(name="p", scope="PROJECT", parent_id=g.id,
                                    project_id="q"))
    assert (taken.value.name, taken.value.scope, taken.value.existing_id) == (
        "p", "PROJECT", p.id)
    with pytest.raises(ParentNotActive) as parked:
        manager.start(p.id)
    assert (parked.value.parent_id, parked.value.parent_status) == (g.id, "CREATED")


# -- the field that was meant ---------------------------------------------------------------
def test_an_unknown_field_suggests_the_one_meant(client, h):
    g = h.global_()
    body = assert_problem(client.post(URL, json={"name": "p", "scope": "PROJECT",
                                                 "parent": g["id"], "project_id": "p"}), 422,
                          "validation-error")
    assert body["errors"] == {"parent": ["Unknown field. Did you mean 'parent_id'?"]}
    body = assert_problem(client.get(URL, query_string={"scop": "GLOBAL"}), 400,
                          "invalid-query")
    assert body["errors"] == {"scop": ["Unknown field. Did you mean 'scope'?"]}
    body = assert_problem(client.post(URL, json={"name": "x", "scope": "GLOBAL",
                                                 "type": "SINGLETON"}), 422)
    assert body["errors"] == {"type": ["Unknown field. Did you mean 'instance_type'?"]}
    body = assert_problem(client.post(URL, json={"name": "x", "scope": "GLOBAL",
                                                 "colour": "red"}), 422)
    assert body["errors"] == {"colour": ["Unknown field."]}


@pytest.mark.parametrize("field", ["scope", "id", "version", "created_at", "parent_id",
                                   "project_id", "instance_type", "depth", "heartbeat_at"])
def test_a_patch_of_a_read_only_field_says_so(client, h, field):
    g = h.global_()
    body = assert_problem(client.patch(f"{URL}/{g['id']}", json={field: g[field] or "x"}),
                          422, "validation-error")
    assert list(body["errors"]) == [field]
    assert body["errors"][field][0].startswith("read-only: ")
    assert client.get(f"{URL}/{g['id']}").get_json()["version"] == g["version"]


def test_a_create_that_sets_the_status_is_told_how(client):
    body = assert_problem(client.post(URL, json={"name": "g", "scope": "GLOBAL",
                                                 "status": "ACTIVE"}), 422)
    assert body["errors"]["status"][0].startswith("read-only: ")
    assert client.get(URL).get_json()["items"] == []


# -- one title per code ---------------------------------------------------------------------
def _subclasses(cls: type) -> list[type]:
    found, stack = [], [cls]
    while stack:
        found.append(stack.pop())
        stack.extend(found[-1].__subclasses__())
    return found


def _documented_codes() -> set[str]:
    table = DOCS.read_text().split("## Errors", 1)[1]
    return set(re.findall(r"^\| \d{3} \| `([a-z-]+)` \|", table, re.MULTILINE))


def test_every_code_has_one_title_and_a_line_in_the_docs():
    codes = {c.code for c in _subclasses(HopperGraphError)}
    codes |= set(api_errors.HTTP_CODES.values()) | {"invalid-query"}
    codes |= {c.problem_code for c in vars(api_errors).values()
              if isinstance(c, type) and hasattr(c, "problem_code")}
    for code in sorted(codes):
        assert code in api_errors.TITLES, f"{code} has no title"
    assert _documented_codes() == set(api_errors.TITLES)
    assert len(set(api_errors.TITLES.values())) == len(api_errors.TITLES)


def test_a_code_has_the_same_title_however_it_arises(client, h):
    schema = assert_problem(client.post(URL, json={"name": "", "scope": "GLOBAL"}), 422,
                            "validation-error")
    library = assert_problem(client.post(URL, json={"name": "g", "scope": "GLOBAL",
                                                    "config": {"colour": 1}}), 422,
                             "validation-error")
    deep = assert_problem(client.post(URL, json={"name": "g", "scope": "GLOBAL",
                                                 "metadata": {"n": 2**70}}), 422,
                          "validation-error")
    assert schema["title"] == library["title"] == deep["title"] == "Invalid input"
    route = assert_problem(client.get("/api/v1/nope"), 404, "not-found")
    missing = assert_problem(client.get(f"{URL}/00000000-0000-4000-8000-000000000000"), 404,
                             "not-found")
    assert route["title"] == missing["title"] == "Not found"


# -- enum values: listed, as text, in any letter case ---------------------------------------
def test_enum_values_are_listed_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    parameters = {p["name"]: p["schema"] for p in document["paths"][URL]["get"]["parameters"]}
    assert parameters["scope"]["type"] == parameters["status"]["type"] == "string"
    assert parameters["scope"]["enum"] == ["GLOBAL", "PROJECT", "ORCHESTRATION"]
    assert "ARCHIVED" in parameters["status"]["enum"]
    create = document["components"]["schemas"]["InstanceCreate"]["properties"]
    assert create["scope"]["type"] == "string" and "PROJECT" in create["scope"]["enum"]
    assert "any letter case" in create["scope"]["description"]
    instance = document["components"]["schemas"]["Instance"]["properties"]
    assert instance["status"]["type"] == "string" and "ACTIVE" in instance["status"]["enum"]


def test_enum_errors_list_the_values_as_text(client, h):
    body = assert_problem(client.post(URL, json={"name": "g", "scope": "WORLD"}), 422)
    assert body["errors"] == {"scope": ["Must be one of: GLOBAL, PROJECT, ORCHESTRATION."]}
    body = assert_problem(client.get(URL, query_string={"status": "RUNNING"}), 400)
    assert body["errors"]["status"] == [
        "Must be one of: CREATED, ACTIVE, PAUSED, STOPPED, ARCHIVED."]
    g = h.global_()
    body = assert_problem(client.post(URL, json={"name": "r", "scope": "ORCHESTRATION",
                                                 "parent_id": g["id"]}), 422,
                          "scope-rule-violation")
    assert body["detail"] == "an ORCHESTRATION instance cannot have a GLOBAL parent"
    assert body["errors"] == {"parent_id": [
        "parent is GLOBAL; an ORCHESTRATION needs one of: ORCHESTRATION, PROJECT"]}
    body = assert_problem(client.post(URL, json={"name": "r", "scope": "ORCHESTRATION"}), 422)
    assert body["errors"]["parent_id"] == ["an ORCHESTRATION instance needs a parent"]


def test_scope_status_and_type_take_any_letter_case(client, h):
    g = h.create(name="g", scope="global")
    assert g["scope"] == "GLOBAL"
    p = h.create(name="p", scope="Project", parent_id=g["id"], project_id="p",
                 instance_type="persistent")
    assert (p["scope"], p["instance_type"]) == ("PROJECT", "PERSISTENT")
    listed = client.get(URL, query_string={"scope": "project", "status": "created"})
    assert [i["id"] for i in listed.get_json()["items"]] == [p["id"]]
    started = client.patch(f"{URL}/{g['id']}", json={"status": "active"})
    assert started.status_code == 200 and started.get_json()["status"] == "ACTIVE"


# -- unknown paths --------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/api/v1/nope", "/api/v1/instances/global/extra",
                                  f"{URL}/00000000-0000-4000-8000-000000000000/nope"])
def test_a_path_that_is_no_instance_path_is_plainly_not_found(client, path):
    body = assert_problem(client.get(path), 404, "not-found")
    assert body["detail"] == f"There is no such resource: {path}."


def test_an_instance_path_without_a_uuid_says_ids_are_uuids(client):
    body = assert_problem(client.get(f"{URL}/website"), 404, "not-found")
    assert "instance ids are UUIDs" in body["detail"] and "'website'" in body["detail"]
    body = assert_problem(client.post(f"{URL}//start"), 404, "not-found")
    assert "id is missing" in body["detail"]


def test_the_read_only_table_names_only_instance_fields():
    instance_fields = set(schemas.InstanceSchema().fields)
    assert set(schemas.InstanceUpdateSchema.read_only) <= instance_fields
    assert set(schemas.InstanceCreateSchema.read_only) <= instance_fields


def test_the_problems_gunicorn_answers_have_the_apis_codes_and_titles():
    from hopper_graph.cli.worker import PROBLEMS
    for status, (code, title) in PROBLEMS.items():
        assert api_errors.TITLES[code] == title, (status, code)
