"""Names over REST in Unicode NFC, and names with no visible character (issue 24, item 12)."""

from __future__ import annotations

from tests.api.conftest import assert_problem

URL = "/api/v1/instances"


def test_a_decomposed_twin_of_a_name_is_409_and_a_blank_name_422(client, h):
    g = h.global_()
    first = h.project(g, "caf\u00e9")
    twin = client.post(URL, json={"name": "cafe\u0301", "scope": "PROJECT",
                                  "parent_id": g["id"], "project_id": "other"})
    assert assert_problem(twin, 409, "duplicate-name")["existing_id"] == first["id"]
    blank = client.post(URL, json={"name": "\u200b", "scope": "PROJECT",
                                   "parent_id": g["id"], "project_id": "blank"})
    assert "name" in assert_problem(blank, 422, "validation-error")["errors"]
    stored = h.project(g, "na\u0308me", project_id="na\u0308me")
    assert stored["name"] == stored["project_id"] == "n\u00e4me"
