"""Read-your-writes over HTTP: a write's response carries its bookmark, and a read that
sends it back is served at least that fresh (here by the one local server)."""

from __future__ import annotations

from tests.api.conftest import assert_problem


def test_a_write_returns_a_bookmark_a_read_can_send_back(client, h):
    created = client.post("/api/v1/instances", json={"name": "g", "scope": "GLOBAL"})
    assert created.status_code == 201
    bookmark = created.headers["Hopper-Bookmark"]
    assert bookmark
    read = client.get(f"/api/v1/instances/{created.json['id']}",
                      headers={"Hopper-Bookmark": bookmark})
    assert read.status_code == 200
    assert "Hopper-Bookmark" not in read.headers  # a read leaves none behind


def test_a_bookmark_that_is_none_is_a_problem_naming_it(client, h):
    g = h.global_()
    response = client.get(f"/api/v1/instances/{g['id']}",
                          headers={"Hopper-Bookmark": "FB:not-one-of-ours"})
    body = assert_problem(response, 422)
    assert "bookmark" in body["errors"]
