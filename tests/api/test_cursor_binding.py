"""A cursor works only on the endpoint and list it came from (issue 24, item 13)."""

from __future__ import annotations

from hopper_graph import cursors
from tests.api.conftest import assert_problem

URL = "/api/v1/instances"


def test_a_cursor_of_another_endpoint_or_list_or_with_a_non_uuid_is_422(client, h):
    g = h.global_()
    a, b = h.project(g, "a"), h.project(g, "b")
    for i in range(3):
        h.run(a, f"a-{i}")
        h.run(b, f"b-{i}")
    listed = client.get(f"{URL}?limit=1&after=").get_json()["next"]
    children_a = client.get(f"{URL}/{a['id']}/children?limit=1&after=").get_json()["next"]
    body = assert_problem(client.get(f"{URL}/{a['id']}/children?after={listed}"), 422,
                          "validation-error")
    assert "after" in body["errors"]
    assert_problem(client.get(f"{URL}/{b['id']}/children?after={children_a}"), 422,
                   "validation-error")
    assert_problem(client.get(f"{URL}?after={children_a}"), 422, "validation-error")
    assert_problem(client.get(f"{URL}/{a['id']}/descendants?after={children_a}"), 422,
                   "validation-error")
    forged = cursors.encode(cursors.CREATED, "2026-01-01T00:00:00+00:00", "not-a-uuid",
                            bound=cursors.bound("children", a["id"]))
    body = assert_problem(client.get(f"{URL}/{a['id']}/children?after={forged}"), 422,
                          "validation-error")
    assert "UUID" in body["errors"]["after"][0]
    page = client.get(f"{URL}/{a['id']}/children?limit=1&after={children_a}").get_json()
    assert [i["name"] for i in page["items"]] == ["a-1"]
