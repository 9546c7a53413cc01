"""PATCH of limits.max_child_instances below the children there are (issue 24, item 4)."""

from __future__ import annotations

from tests.api.conftest import assert_problem

URL = "/api/v1/instances"


def test_lowering_a_limit_below_the_children_is_409_naming_the_count(client, h):
    g = h.global_()
    p = h.project(g, "alpha")
    for i in range(3):
        h.run(p, f"run-{i}")
    response = client.patch(f"{URL}/{p['id']}",
                            json={"config": {"limits": {"max_child_instances": 1}}})
    body = assert_problem(response, 409, "limit-exceeded")
    assert body["child_count"] == 3 and "has 3 children" in body["detail"]
    assert client.get(f"{URL}/{p['id']}").get_json()["version"] == p["version"]
    ok = client.patch(f"{URL}/{p['id']}", json={"config": {"limits": {"max_child_instances": 3}}})
    assert ok.status_code == 200
