"""POST /instances/{id}/start|stop|pause|resume|archive."""

from __future__ import annotations

import pytest

from hopper_graph import HookRegistry
from tests.api.conftest import assert_problem

URL = "/api/v1/instances"
RESPONSE_KEYS = {"id", "event", "previous_status", "status", "at", "cascaded", "instance"}


def test_start_answers_the_lifecycle_response_with_the_new_etag(client, h):
    g = h.global_()
    response = client.post(f"{URL}/{g['id']}/start", json={"reason": "go", "actor": "alice"})
    assert response.status_code == 200
    body = response.get_json()
    assert body.keys() == RESPONSE_KEYS
    assert (body["id"], body["event"], body["previous_status"], body["status"]) == (
        g["id"], "start", "CREATED", "ACTIVE")
    assert body["cascaded"] == [] and body["instance"]["status"] == "ACTIVE"
    assert response.headers["ETag"] == f'"{body["instance"]["version"]}"'
    [_, event] = client.get(f"{URL}/{g['id']}/history").get_json()["items"]
    assert (event["reason"], event["actor"]) == ("go", "alice")


def test_a_reason_as_long_as_the_library_takes_is_accepted(client, h):
    """The API once refused a reason over 1,000 characters the library stores (2,000)."""
    g = h.global_()
    reason = "r" * 1500
    response = client.post(f"{URL}/{g['id']}/start", json={"reason": reason})
    assert response.status_code == 200, response.get_json()
    assert client.get(f"{URL}/{g['id']}/history").get_json()["items"][-1]["reason"] == reason


def test_the_body_is_optional_and_x_actor_names_the_actor(client, h):
    g = h.global_()
    assert client.post(f"{URL}/{g['id']}/start", headers={"X-Actor": "bob"}).status_code == 200
    assert client.get(f"{URL}/{g['id']}/history").get_json()["items"][-1]["actor"] == "bob"


def test_cascades_are_listed_with_their_cause(client, h):
    g, p, run = h.chain()
    for instance in (g, p, run):
        h.event(instance, "start")
    paused = h.event(g, "pause")
    assert [(c["id"], c["event"], c["previous_status"], c["status"], c["cause"])
            for c in paused["cascaded"]] == [
        (run["id"], "pause", "ACTIVE", "PAUSED", g["id"]),
        (p["id"], "pause", "ACTIVE", "PAUSED", g["id"])]
    resumed = h.event(g, "resume")
    assert {c["id"] for c in resumed["cascaded"]} == {p["id"], run["id"]}
    stopped = h.event(p, "stop")
    # the run is EPHEMERAL: stopped, then archived at once
    assert [(c["id"], c["event"]) for c in stopped["cascaded"]] == [
        (run["id"], "stop"), (run["id"], "archive")]


@pytest.mark.parametrize(("event", "allowed"), [
    ("pause", ["start", "archive"]), ("resume", ["start", "archive"]),
    ("stop", ["start", "archive"])])
def test_an_invalid_transition_is_409_with_the_allowed_events(client, h, event, allowed):
    g = h.global_()
    body = assert_problem(client.post(f"{URL}/{g['id']}/{event}"), 409, "invalid-transition")
    assert (body["current_status"], body["event"], body["allowed_events"]) == (
        "CREATED", event, allowed)
    assert g["id"] in body["detail"]


def test_guards_are_conflicts(client, h):
    g, p, _ = h.chain()
    body = assert_problem(client.post(f"{URL}/{p['id']}/start"), 409, "parent-not-active")
    assert body["parent_status"] == "CREATED" and body["current_status"] == "CREATED"
    h.event(g, "start")
    h.event(p, "start")
    body = assert_problem(client.post(f"{URL}/{g['id']}/archive"), 409, "invalid-transition")
    assert body["allowed_events"] == ["pause", "stop"]


def test_nothing_may_be_created_under_an_archived_parent(client, h):
    g = h.global_()
    p = h.project(g, "alpha")
    h.event(p, "archive")
    body = assert_problem(client.post(URL, json={"name": "r", "scope": "ORCHESTRATION",
                                                 "parent_id": p["id"]}), 409, "parent-archived")
    assert body["parent_id"] == p["id"]


def test_a_before_hook_veto_is_409(make_app, h):
    hooks = HookRegistry()

    @hooks.before("on_start")
    def refuse(context):
        raise RuntimeError("no capacity")

    client = make_app(HOPPER_HOOKS=hooks).test_client()
    g = client.post(URL, json={"name": "g", "scope": "GLOBAL"}).get_json()
    body = assert_problem(client.post(f"{URL}/{g['id']}/start"), 409, "hook-vetoed")
    assert body["hook"] == "on_start" and "no capacity" in body["detail"]
    assert client.get(f"{URL}/{g['id']}").get_json()["status"] == "CREATED"


def test_unknown_instance_is_404(client):
    body = assert_problem(
        client.post(f"{URL}/00000000-0000-4000-8000-000000000000/start"), 404, "not-found")
    assert body["id"] == "00000000-0000-4000-8000-000000000000"


def test_an_unknown_event_is_not_a_route(client, h):
    g = h.global_()
    assert_problem(client.post(f"{URL}/{g['id']}/explode"), 404)
    assert_problem(client.get(f"{URL}/{g['id']}/start"), 405, "method-not-allowed")


def test_lifecycle_body_fields_are_checked(client, h):
    g = h.global_()
    body = assert_problem(client.post(f"{URL}/{g['id']}/start", json={"why": "x"}), 422,
                          "validation-error")
    assert body["errors"] == {"why": ["Unknown field."]}
    assert_problem(client.post(f"{URL}/{g['id']}/start", json=["start"]), 422)


def test_an_x_actor_header_too_long_is_refused_naming_it_and_changes_nothing(client, h):
    g = h.global_()
    too_long = client.post(f"{URL}/{g['id']}/start", headers={"X-Actor": "a" * 256})
    body = assert_problem(too_long, 422, "validation-error")
    assert "X-Actor" in body["detail"] and list(body["errors"]) == ["X-Actor"]
    assert client.get(f"{URL}/{g['id']}").get_json()["status"] == "CREATED"
    with_if_match = client.post(f"{URL}/{g['id']}/start",  # the header is checked first
                                headers={"X-Actor": "a" * 256, "If-Match": ""})
    assert_problem(with_if_match, 422, "validation-error")
    started = client.post(f"{URL}/{g['id']}/start", headers={"X-Actor": "a" * 255})
    assert started.status_code == 200
    history = client.get(f"{URL}/{g['id']}/history").get_json()["items"]
    assert history[-1]["actor"] == "a" * 255
