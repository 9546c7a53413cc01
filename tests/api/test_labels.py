"""Labels and selectors over REST: create, PATCH, ?selector= on every list, the tree and
the feed, and the 400 a malformed selector answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import assert_problem

URL = "/api/v1/instances"


@pytest.fixture
def fleet(h) -> dict[str, Any]:
    g = h.global_()
    p = h.project(g, "alpha")
    made = {"p": p, "g": g}
    for name, labels in (("a", {"team": "infra", "env": "prod"}),
                         ("b", {"team": "web"}),
                         ("c", {"team": "infra", "legacy": "yes"})):
        made[name] = h.run(p, name, labels=labels)
    return made


def names(body: dict[str, Any]) -> list[str]:
    return [i["name"] for i in body["items"]]


def test_labels_are_created_read_and_patched(client, fleet):
    a = fleet["a"]
    assert a["labels"] == {"env": "prod", "team": "infra"}
    response = client.patch(f"{URL}/{a['id']}", json={"labels": {"env": None, "tier": "x"}})
    assert response.status_code == 200
    assert response.get_json()["labels"] == {"team": "infra", "tier": "x"}
    assert client.get(f"{URL}/{a['id']}").get_json()["labels"] == {"team": "infra", "tier": "x"}


def test_a_bad_label_is_422_naming_the_key(client, fleet):
    response = client.post(URL, json={"name": "bad", "scope": "ORCHESTRATION",
                                      "parent_id": fleet["p"]["id"],
                                      "labels": {"team": "in fra"}})
    body = assert_problem(response, 422, "validation-error")
    assert "labels.team" in body["errors"]
    response = client.patch(f"{URL}/{fleet['a']['id']}", json={"labels": {"-x": "y"}})
    assert "labels.-x" in assert_problem(response, 422, "validation-error")["errors"]


def test_selector_on_the_list_children_descendants_and_tree(client, fleet):
    p = fleet["p"]["id"]
    listed = client.get(f"{URL}?selector=team=infra").get_json()
    assert names(listed) == ["a", "c"]
    assert listed["items"][0]["labels"] == {"env": "prod", "team": "infra"}
    assert names(client.get(f"{URL}?selector=team=infra,!legacy").get_json()) == ["a"]
    assert names(client.get(f"{URL}/{p}/children?selector=team!=infra").get_json()) == ["b"]
    assert names(client.get(
        f"{URL}/{p}/descendants?selector=team in (web,infra)").get_json()) == ["a", "b", "c"]
    flat = client.get(f"{URL}/{p}/tree?format=flat&selector=legacy").get_json()
    assert [r["instance"]["name"] for r in flat["items"]] == ["c"]
    lean = client.get(f"{URL}/{p}/tree?format=flat&fields=name&selector=legacy").get_json()
    assert [r["instance"] for r in lean["items"]] == [{"id": fleet["c"]["id"], "name": "c"}]


def test_a_tree_selector_that_matches_nothing_is_an_empty_flat_tree(client, fleet):
    p = fleet["p"]["id"]
    for fields in ({}, {"fields": "name"}):
        body = client.get(f"{URL}/{p}/tree", query_string={
            "format": "flat", "selector": "nothing=here", **fields}).get_json()
        assert (body["root_id"], body["count"], body["items"]) == (p, 0, [])


def test_a_selector_on_the_nested_tree_is_refused_naming_it(client, fleet):
    response = client.get(f"{URL}/{fleet['p']['id']}/tree?selector=legacy")
    body = assert_problem(response, 400, "invalid-query")
    assert "format=flat" in " ".join(body["errors"]["selector"])


def test_cursor_pages_with_a_selector(client, fleet):
    first = client.get(f"{URL}?selector=team=infra&limit=1&after=").get_json()
    assert names(first) == ["a"]
    second = client.get(f"{URL}?selector=team=infra&limit=1&after={first['next']}").get_json()
    assert names(second) == ["c"]


def test_a_malformed_selector_is_400_naming_the_position(client, fleet):
    body = assert_problem(client.get(f"{URL}?selector=team in (a b)"), 400,
                          "invalid-selector")
    assert body["errors"] == {"selector": ["position 12: expected ',' or ')', found 'b'"]}
    assert body["position"] == 12 and body["selector"] == "team in (a b)"
    assert_problem(client.get("/api/v1/events?selector=!"), 400, "invalid-selector")


def test_the_feed_keeps_the_events_of_matching_instances(client, fleet):
    body = client.get("/api/v1/events?selector=team=infra&limit=1000").get_json()
    assert {e["instance_id"] for e in body["items"]} == {fleet["a"]["id"], fleet["c"]["id"]}
    small = client.get("/api/v1/events?selector=team=web&limit=1").get_json()
    assert small["items"] == [] and small["next_after"] == 1  # read one, kept none
