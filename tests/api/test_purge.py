"""POST /api/v1/instances/purge: the operator's purge, with a dry run that says why."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem

URL = "/api/v1/instances"
PURGE = f"{URL}/purge"
ITEM_KEYS = {"id", "name", "scope", "archived_at", "reason"}


@pytest.fixture
def runs(h):
    """Three archived runs under an ACTIVE project: one past its retention, one inside it,
    one that asks never to be purged."""
    g = h.global_()
    p = h.project(g, "alpha")
    for instance in (g, p):
        h.event(instance, "start")
    made = {}
    for name, retention in (("gone", {"archived_ttl_seconds": 0}),
                            ("young", {"archived_ttl_seconds": 3600}),
                            ("pinned", {"archived_ttl_seconds": 0, "purge_archived": False})):
        run = h.run(p, name, config={"retention": retention})
        h.event(run, "start")
        h.event(run, "stop")  # EPHEMERAL: archived as it stops
        made[name] = run
    return made


def by_name(items):
    assert all(set(item) == ITEM_KEYS and item["reason"] for item in items), items
    return {item["name"]: item for item in items}


def test_a_dry_run_lists_what_would_go_and_what_stays_and_deletes_nothing(client, runs):
    response = client.post(PURGE, json={"dry_run": True})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["dry_run"] is True
    purged, kept = by_name(body["purged"]), by_name(body["kept"])
    assert set(purged) == {"gone"} and set(kept) == {"young", "pinned"}
    assert purged["gone"]["id"] == runs["gone"]["id"]
    assert purged["gone"]["scope"] == "ORCHESTRATION" and purged["gone"]["archived_at"]
    assert "purge_archived" in kept["pinned"]["reason"]
    assert "retention" in kept["young"]["reason"]
    for run in runs.values():
        assert client.get(f"{URL}/{run['id']}").status_code == 200


def test_a_purge_deletes_what_is_past_its_retention_and_keeps_its_history(client, runs):
    response = client.post(PURGE, json={"dry_run": False}, headers={"X-Actor": "ops"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["dry_run"] is False
    assert set(by_name(body["purged"])) == {"gone"}
    assert set(by_name(body["kept"])) == {"young", "pinned"}
    assert_problem(client.get(f"{URL}/{runs['gone']['id']}"), 404)
    history = client.get(f"{URL}/{runs['gone']['id']}/history").get_json()["items"]
    assert (history[-1]["event"], history[-1]["actor"]) == ("delete", "ops")
    assert client.get(f"{URL}/{runs['young']['id']}").status_code == 200
    again = client.post(PURGE).get_json()  # no body: a real purge, with nothing left to do
    assert again["purged"] == [] and set(by_name(again["kept"])) == {"young", "pinned"}


def test_older_than_replaces_each_instances_own_retention(client, runs):
    body = client.post(PURGE, json={"dry_run": True, "older_than_seconds": 0}).get_json()
    assert {"gone", "young"} <= set(by_name(body["purged"]))
    body = client.post(PURGE, json={"dry_run": True,
                                    "older_than_seconds": 86400}).get_json()
    assert body["purged"] == []
    assert {"gone", "young"} <= set(by_name(body["kept"]))


def test_a_purge_that_stops_at_its_limit_says_so_and_where_to_go_on(client, runs):
    first = client.post(PURGE, json={"dry_run": True, "limit": 1}).get_json()
    assert [i["name"] for i in first["purged"] + first["kept"]] == ["gone"]
    assert first["more"] is True and first["cursor"]
    rest = client.post(PURGE, json={"dry_run": True, "after": first["cursor"]}).get_json()
    assert rest["purged"] == [] and [i["name"] for i in rest["kept"]] == ["young", "pinned"]
    assert (rest["more"], rest["cursor"]) == (False, None)
    problem = assert_problem(client.post(PURGE, json={"after": "nonsense"}), 422,
                             "validation-error")
    assert set(problem["errors"]) == {"after"}


@pytest.mark.parametrize(("body", "field"), [
    ({"dry_run": "maybe"}, "dry_run"),
    ({"dry_run": 0}, "dry_run"),  # 0 equals False, but it is no JSON boolean (schemathesis)
    ({"dry_run": 1}, "dry_run"),
    ({"older_than_seconds": -1}, "older_than_seconds"),
    ({"older_than_seconds": "7d"}, "older_than_seconds"),
    ({"older_than_seconds": 10**12}, "older_than_seconds"),
    ({"dry_run": True, "force": True}, "force"),
    ({"limit": 0}, "limit"),
    ({"limit": 10_001}, "limit"),
    ({"after": 7}, "after"),
])
def test_a_bad_body_is_422_naming_the_field(client, runs, body, field):
    problem = assert_problem(client.post(PURGE, json=body), 422, "validation-error")
    assert set(problem["errors"]) == {field}
    assert client.get(f"{URL}/{runs['gone']['id']}").status_code == 200


def test_purge_takes_no_query_and_needs_the_token(make_app):
    client = make_app(HOPPER_API_TOKEN="s3cret").test_client()
    assert_problem(client.post(PURGE, json={"dry_run": True}), 401)
    auth = {"Authorization": "Bearer s3cret"}
    assert_problem(client.post(f"{PURGE}?dry_run=true", headers=auth), 400, "invalid-query")
    assert client.post(PURGE, json={"dry_run": True}, headers=auth).status_code == 200
    assert_problem(client.get(PURGE, headers=auth), 405)


def test_purge_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/instances/purge"]["post"]
    assert "Purge" in operation["summary"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/PurgeRequest")
    assert {"200", "401", "422"} <= set(operation["responses"])
