"""children, ancestors, descendants and tree, including a tree 2,000 levels deep."""

from __future__ import annotations

import json
import sys

from hopper_graph import InstanceManager
from tests.api.conftest import assert_problem
from tests.factories import chain_specs, make_global

URL = "/api/v1/instances"


def _ids(items):
    return [i["id"] for i in items]


def _family(h):
    """g -> (a -> (a1, a2 -> x), b)"""
    g = h.global_()
    a, b = h.project(g, "a"), h.project(g, "b")
    a1, a2 = h.run(a, "a1"), h.run(a, "a2")
    x = h.run(a2, "x")
    return g, a, b, a1, a2, x


def test_children_are_paginated_in_creation_order(client, h):
    g, a, b, *_ = _family(h)
    page = client.get(f"{URL}/{g['id']}/children?limit=1").get_json()
    assert _ids(page["items"]) == [a["id"]]
    assert (page["total"], page["next_offset"]) == (2, 1)
    rest = client.get(f"{URL}/{g['id']}/children?offset=1").get_json()
    assert _ids(rest["items"]) == [b["id"]] and rest["next_offset"] is None


def test_ancestors_nearest_first(client, h):
    g, a, _, _, a2, x = _family(h)
    body = client.get(f"{URL}/{x['id']}/ancestors").get_json()
    assert body.keys() == {"items"} and _ids(body["items"]) == [a2["id"], a["id"], g["id"]]
    assert client.get(f"{URL}/{g['id']}/ancestors").get_json() == {"items": []}


def test_descendants_level_by_level_and_paginated(client, h):
    g, a, b, a1, a2, x = _family(h)
    body = client.get(f"{URL}/{g['id']}/descendants").get_json()
    assert body["total"] == 5
    assert set(_ids(body["items"][:2])) == {a["id"], b["id"]}
    assert _ids(body["items"])[-1] == x["id"]
    page = client.get(f"{URL}/{g['id']}/descendants?offset=2&limit=2").get_json()
    assert set(_ids(page["items"])) == {a1["id"], a2["id"]} and page["next_offset"] == 4


def test_tree_nested_and_flat(client, h):
    g, a, b, a1, a2, x = _family(h)
    response = client.get(f"{URL}/{g['id']}/tree")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert (body["root_id"], body["format"], body["count"], body["max_depth"]) == (
        g["id"], "nested", 6, None)
    tree = body["tree"]
    assert tree["instance"] == client.get(f"{URL}/{g['id']}").get_json()
    assert [c["instance"]["id"] for c in tree["children"]] == [a["id"], b["id"]]
    [first, second] = tree["children"][0]["children"]
    assert (first["instance"]["id"], second["instance"]["id"]) == (a1["id"], a2["id"])
    assert second["children"][0]["instance"]["id"] == x["id"]
    assert second["children"][0]["children"] == []

    flat = client.get(f"{URL}/{a['id']}/tree?format=flat").get_json()
    assert flat["format"] == "flat" and "tree" not in flat
    rows = [(r["instance"]["id"], r["parent_id"], r["depth"]) for r in flat["items"]]
    assert rows[0] == (a["id"], None, 0)
    assert set(rows[1:]) == {(a1["id"], a["id"], 1), (a2["id"], a["id"], 1),
                             (x["id"], a2["id"], 2)}


def test_tree_max_depth(client, h):
    g, _a, _b, *_ = _family(h)
    body = client.get(f"{URL}/{g['id']}/tree?max_depth=1").get_json()
    assert body["count"] == 3 and body["max_depth"] == 1
    assert all(c["children"] == [] for c in body["tree"]["children"])
    root_only = client.get(f"{URL}/{g['id']}/tree?max_depth=0&format=flat").get_json()
    assert _ids(r["instance"] for r in root_only["items"]) == [g["id"]]
    assert_problem(client.get(f"{URL}/{g['id']}/tree?max_depth=-1"), 400, "invalid-query")
    assert_problem(client.get(f"{URL}/{g['id']}/tree?format=xml"), 400, "invalid-query")


def test_hierarchy_of_an_unknown_instance_is_404(client):
    missing = "00000000-0000-4000-8000-000000000000"
    for part in ("children", "ancestors", "descendants", "tree", "config/effective", "health"):
        assert_problem(client.get(f"{URL}/{missing}/{part}"), 404, "not-found")


def test_a_chain_2000_deep_answers_200_nested_and_flat(client, clean_graph, database):
    manager = InstanceManager(clean_graph, database)
    g = make_global(manager, limits={"max_depth": 5000})
    specs = chain_specs(2000, g.id)
    manager.bulk_create(specs)

    response = client.get(f"{URL}/{g.id}/tree")
    assert response.status_code == 200
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # only to read the answer back: it nests 4,000 levels
    try:
        body = json.loads(response.get_data())
    finally:
        sys.setrecursionlimit(limit)
    depth, node = 0, body["tree"]
    while node["children"]:
        [node] = node["children"]
        depth += 1
    assert depth == 2000 and node["instance"]["id"] == specs[-1].id and body["count"] == 2001

    flat = client.get(f"{URL}/{g.id}/tree?format=flat").get_json()
    assert [r["depth"] for r in flat["items"]] == list(range(2001))
