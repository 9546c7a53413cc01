"""POST /instances/{id}/move: the moved instance with its new ETag, If-Match, the move's
problem types, the audit event in the history, and the OpenAPI entry."""

from __future__ import annotations

from tests.api.conftest import assert_problem

URL = "/api/v1/instances"


def test_a_move_answers_the_instance_with_its_new_etag(client, h):
    g = h.global_()
    a, b = h.project(g, "a"), h.project(g, "b")
    run = h.run(a, "run")
    response = client.post(f"{URL}/{run['id']}/move", json={
        "parent_id": b["id"], "expected_parent_id": a["id"], "reason": "misfiled"},
        headers={"If-Match": f'"{run["version"]}"', "X-Actor": "alice"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["parent_id"] == b["id"] and body["version"] == run["version"] + 1
    assert body["project_id"] == b["project_id"]
    assert response.headers["ETag"] == f'"{body["version"]}"'
    event = client.get(f"{URL}/{run['id']}/history").get_json()["items"][-1]
    assert (event["event"], event["from_parent_id"], event["to_parent_id"]) == (
        "move", a["id"], b["id"])
    assert (event["actor"], event["reason"]) == ("alice", "misfiled")


def test_a_stale_if_match_is_412_and_moves_nothing(client, h):
    g = h.global_()
    a, b = h.project(g, "a"), h.project(g, "b")
    run = h.run(a, "run")
    assert_problem(client.post(f"{URL}/{run['id']}/move", json={"parent_id": b["id"]},
                               headers={"If-Match": '"9"'}), 412)
    assert client.get(f"{URL}/{run['id']}").get_json()["parent_id"] == a["id"]


def test_the_move_rules_are_problems_naming_the_instance_and_the_rule(client, h):
    g = h.global_()
    a, b = h.project(g, "a"), h.project(g, "b")
    run = h.run(a, "run")
    phase = h.run(run, "phase")
    body = assert_problem(client.post(f"{URL}/{run['id']}/move", json={
        "parent_id": phase["id"]}), 409, "move-cycle")
    assert (body["id"], body["rule"]) == (run["id"], "no-cycle")
    body = assert_problem(client.post(f"{URL}/{run['id']}/move", json={
        "parent_id": b["id"], "expected_parent_id": b["id"]}), 409, "parent-mismatch")
    assert (body["parent_id"], body["expected_parent_id"]) == (a["id"], b["id"])
    body = assert_problem(client.post(f"{URL}/{g['id']}/move", json={
        "parent_id": a["id"]}), 422, "global-not-movable")
    assert body["id"] == g["id"]
    body = assert_problem(client.post(f"{URL}/{run['id']}/move", json={
        "parent_id": g["id"]}), 422, "scope-rule-violation")
    assert body["rule"] == "scope-order"


def test_the_body_needs_a_parent_id(client, h):
    g = h.global_()
    a = h.project(g, "a")
    body = assert_problem(client.post(f"{URL}/{a['id']}/move", json={}), 422,
                          "validation-error")
    assert "parent_id" in body["errors"]
    assert_problem(client.post(f"{URL}/{a['id']}/move", json={"parent_id": "x"}), 422)


def test_the_openapi_document_lists_the_move_with_its_problems(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/instances/{instance_id}/move"]["post"]
    assert {"409", "412", "422"} <= operation["responses"].keys()
    assert any(p["name"] == "If-Match" for p in operation.get("parameters", []))
