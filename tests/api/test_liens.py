"""/instances/{id}/liens: add, list, remove, and the 409 instance-protected they cause."""

from __future__ import annotations

import uuid

from tests.api.conftest import assert_problem

URL = "/api/v1/instances"


def test_a_lien_is_added_listed_and_removed(client, h):
    _, p, _ = h.chain()
    response = client.post(f"{URL}/{p['id']}/liens", headers={"X-Actor": "ops"},
                           json={"reason": "serves production", "origin": "team-infra"})
    assert response.status_code == 201, response.get_json()
    lien = response.get_json()
    assert (lien["reason"], lien["origin"], lien["actor"], lien["instance_id"]) == (
        "serves production", "team-infra", "ops", p["id"])
    assert response.headers["Location"].endswith(f"/instances/{p['id']}/liens/{lien['id']}")
    assert client.get(f"{URL}/{p['id']}/liens").get_json()["items"] == [lien]
    removed = client.delete(f"{URL}/{p['id']}/liens/{lien['id']}")
    assert removed.status_code == 200 and removed.get_json()["id"] == lien["id"]
    assert client.get(f"{URL}/{p['id']}/liens").get_json()["items"] == []
    events = [e["event"] for e in client.get(f"{URL}/{p['id']}/history").get_json()["items"]]
    assert events[-2:] == ["add_lien", "remove_lien"]


def test_delete_and_archive_are_409_instance_protected_naming_the_lien(client, h):
    g, p, run = h.chain()
    client.post(f"{URL}/{run['id']}/liens", json={"reason": "incident 42", "origin": "sre"})
    for target in (g, p, run):
        response = client.delete(f"{URL}/{target['id']}?force=true")
        body = assert_problem(response, 409, "instance-protected")
        assert run["id"] in body["detail"] and "incident 42" in body["detail"]
        assert body["protected"][0]["liens"][0]["origin"] == "sre"
    assert_problem(client.post(f"{URL}/{run['id']}/archive"), 409, "instance-protected")
    assert_problem(client.post(f"{URL}/{p['id']}/archive"), 409, "instance-protected")


def test_lien_requests_are_checked(client, h):
    _, p, _ = h.chain()
    assert_problem(client.post(f"{URL}/{p['id']}/liens", json={}), 422, "validation-error")
    assert_problem(client.post(f"{URL}/{p['id']}/liens", json={"reason": " "}), 422,
                   "validation-error")
    assert_problem(client.post(f"{URL}/{uuid.uuid4()}/liens", json={"reason": "x"}), 404,
                   "not-found")
    assert_problem(client.delete(f"{URL}/{p['id']}/liens/{uuid.uuid4()}"), 404, "not-found")


def test_the_openapi_document_lists_the_lien_operations(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    liens = paths["/api/v1/instances/{instance_id}/liens"]
    assert {"get", "post"} <= liens.keys() and "409" in liens["post"]["responses"]
    assert "delete" in paths["/api/v1/instances/{instance_id}/liens/{lien_id}"]
