"""CRUD on /api/v1/instances: shapes, filters, pagination, ETags and If-Match."""

from __future__ import annotations

from datetime import datetime

import pytest

from api import EXTENSION
from tests.api.conftest import assert_problem

INSTANCE_KEYS = {"id", "name", "scope", "status", "instance_type", "parent_id", "project_id",
                 "config", "metadata", "labels", "created_at", "updated_at", "started_at",
                 "stopped_at", "archived_at", "heartbeat_at", "version", "depth"}
URL = "/api/v1/instances"
NOBODY = "00000000-0000-4000-8000-000000000000"


def test_create_answers_201_with_location_etag_and_the_instance(client, h):
    g = h.global_()
    response = client.post(URL, json={"name": "alpha", "scope": "PROJECT", "parent_id": g["id"],
                                      "project_id": "alpha", "metadata": {"team": "a"},
                                      "config": {"limits": {"max_child_instances": 7}}})
    assert response.status_code == 201
    body = response.get_json()
    assert body.keys() == INSTANCE_KEYS
    assert response.headers["Location"] == f"{URL}/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert (body["scope"], body["status"], body["instance_type"]) == (
        "PROJECT", "CREATED", "PERSISTENT")
    assert body["parent_id"] == g["id"] and body["project_id"] == "alpha"
    assert body["config"]["limits"]["max_child_instances"] == 7
    assert body["metadata"] == {"team": "a"} and body["version"] == 1 and body["depth"] == 1
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert client.get(response.headers["Location"]).get_json() == body


def test_create_takes_a_given_id_in_canonical_form(client):
    given = "0E8F4B9C-1111-4222-8333-944445555666"
    response = client.post(URL, json={"id": given, "name": "g", "scope": "GLOBAL"})
    assert response.status_code == 201
    assert response.get_json()["id"] == given.lower()
    assert client.get(f"{URL}/{given}").status_code == 200


def test_an_orchestration_inherits_the_project_id(h):
    _, _, run = h.chain()
    assert run["project_id"] == "alpha" and run["instance_type"] == "EPHEMERAL"


def test_get_returns_the_instance_with_its_etag_and_304_when_unchanged(client, h):
    g = h.global_()
    response = client.get(f"{URL}/{g['id']}")
    assert response.status_code == 200 and response.get_json() == g
    assert response.headers["ETag"] == '"1"'
    assert client.get(f"{URL}/{g['id']}", headers={"If-None-Match": '"1"'}).status_code == 304
    assert client.get(f"{URL}/{g['id']}", headers={"If-None-Match": '"9"'}).status_code == 200


def test_after_a_heartbeat_the_etag_tells_caches_and_if_match_still_takes_the_old_tag(
        client, h):
    """A heartbeat changes heartbeat_at, not the version: a cache holding the tag read
    before it gets the new document (no 304 with a stale heartbeat_at), while a writer's
    If-Match with that tag still applies (heartbeats are telemetry, not edits)."""
    g = h.global_()
    h.event(g, "start")
    before = client.get(f"{URL}/{g['id']}")
    old_tag = before.headers["ETag"]
    assert old_tag == '"2"' and before.get_json()["heartbeat_at"] is None
    beat = client.post(f"{URL}/{g['id']}/heartbeat").get_json()
    fresh = client.get(f"{URL}/{g['id']}", headers={"If-None-Match": old_tag})
    assert fresh.status_code == 200 and fresh.get_json()["heartbeat_at"] == beat["heartbeat_at"]
    new_tag = fresh.headers["ETag"]
    assert new_tag != old_tag and new_tag.startswith('"2-')
    assert client.get(f"{URL}/{g['id']}", headers={"If-None-Match": new_tag}).status_code == 304
    edited = client.patch(f"{URL}/{g['id']}", json={"metadata": {"a": 1}},
                          headers={"If-Match": old_tag})  # read before the heartbeat
    assert edited.status_code == 200 and edited.get_json()["version"] == 3
    tag_3 = edited.headers["ETag"]
    assert tag_3.startswith('"3-')  # the heartbeat's time is still in the document
    client.post(f"{URL}/{g['id']}/heartbeat")
    again = client.patch(f"{URL}/{g['id']}", json={"metadata": {"b": 2}},
                         headers={"If-Match": tag_3})  # read before the second heartbeat
    assert again.status_code == 200 and again.get_json()["version"] == 4
    stale = client.patch(f"{URL}/{g['id']}", json={"metadata": {"late": True}},
                         headers={"If-Match": '"2-1"'})
    assert_problem(stale, 412, "concurrent-modification")
    for odd in ('"2-"', '"2-x"', '"-5"'):  # not a tag of ours: names no version
        assert client.patch(f"{URL}/{g['id']}", json={"metadata": {}},
                            headers={"If-Match": odd}).status_code == 412


def test_list_filters_and_paginates(client, h):
    g = h.global_(limits={"max_child_instances": 50})
    projects = [h.project(g, f"p{k}") for k in range(5)]
    h.run(projects[0], "r0")
    page = client.get(f"{URL}?scope=PROJECT&limit=2").get_json()
    assert page.keys() == {"items", "total", "offset", "limit", "next", "next_offset"}
    assert [i["name"] for i in page["items"]] == ["p0", "p1"]
    assert (page["total"], page["offset"], page["limit"], page["next_offset"]) == (5, 0, 2, 2)
    last = client.get(f"{URL}?scope=PROJECT&limit=2&offset=4").get_json()
    assert [i["name"] for i in last["items"]] == ["p4"] and last["next_offset"] is None
    assert client.get(f"{URL}?project_id=p0").get_json()["total"] == 2
    assert client.get(f"{URL}?parent_id={g['id']}").get_json()["total"] == 5
    assert client.get(f"{URL}?status=ACTIVE").get_json()["total"] == 0
    assert client.get(URL).get_json()["total"] == 7


def test_list_pages_by_cursor_from_first_to_last(client, h):
    """?after= (empty, then each page's next) walks the list once, in order, without the
    total; a cursor survives instances created after the page it came from."""
    g = h.global_(limits={"max_child_instances": 50})
    for k in range(5):
        h.project(g, f"p{k}")
    first = client.get(f"{URL}?scope=PROJECT&limit=2&after=").get_json()
    assert [i["name"] for i in first["items"]] == ["p0", "p1"]
    assert (first["total"], first["next_offset"]) == (None, None) and first["next"]
    h.project(g, "p5")  # created after the first page was read: comes last, nothing repeats
    names, cursor = [], first["next"]
    while cursor:
        page = client.get(f"{URL}?scope=PROJECT&limit=2&after={cursor}").get_json()
        names += [i["name"] for i in page["items"]]
        cursor = page["next"]
    assert names == ["p2", "p3", "p4", "p5"]


def test_a_cursor_that_is_not_one_is_a_problem_naming_after(client, h):
    g = h.global_()
    children = client.get(f"{URL}/{g['id']}/children?after=").get_json()
    assert children["items"] == [] and children["next"] is None
    for bad in ("nonsense", "WyJzIiwxXQ"):  # not base64 JSON; a history cursor
        body = client.get(f"{URL}?after={bad}").get_json()
        assert body["code"] == "validation-error" and "after" in body["errors"], body
    body = client.get(f"{URL}?after=&offset=5").get_json()
    assert "offset" in body["errors"]


def test_bad_query_parameters_are_400_with_errors_by_parameter(client):
    body = assert_problem(client.get(f"{URL}?limit=0&offset=-1&scope=NOPE"), 400,
                          "invalid-query")
    assert set(body["errors"]) == {"limit", "offset", "scope"}
    assert_problem(client.get(f"{URL}?limit=100000"), 400, "invalid-query")


def test_patch_merges_config_and_metadata_and_bumps_the_etag(client, h):
    g = h.global_()
    p = h.project(g, "alpha", metadata={"a": 1, "b": {"c": 2}})
    response = client.patch(f"{URL}/{p['id']}", json={
        "name": "alpha-2", "metadata": {"b": {"d": 3}, "a": None},
        "config": {"delegation": {"orchestration_threshold": 4}}})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert response.headers["ETag"] == f'"{body["version"]}"' and body["version"] == 2
    assert body["name"] == "alpha-2" and body["metadata"] == {"b": {"c": 2, "d": 3}}
    assert body["config"]["delegation"]["orchestration_threshold"] == 4
    assert body["config"]["delegation"]["auto_delegate"] is True  # merged, not replaced


def test_patch_with_replace_replaces_metadata_and_config_overrides(client, h):
    g = h.global_()
    p = h.project(g, "alpha", metadata={"a": 1}, config={"tags": ["x"]})
    body = client.patch(f"{URL}/{p['id']}", json={"metadata": {"z": 0}, "config": {},
                                                  "replace": True}).get_json()
    assert body["metadata"] == {"z": 0} and body["config"]["tags"] == []


def test_patch_status_performs_the_matching_lifecycle_event(client, h):
    g, p, _ = h.chain()
    h.event(g, "start")
    started = client.patch(f"{URL}/{p['id']}", json={"status": "ACTIVE"}).get_json()
    assert started["status"] == "ACTIVE" and started["started_at"]
    paused = client.patch(f"{URL}/{p['id']}", json={"status": "PAUSED"}).get_json()
    assert paused["status"] == "PAUSED"
    both = client.patch(f"{URL}/{p['id']}", json={"status": "ACTIVE", "name": "renamed",
                                                  "reason": "back"}).get_json()
    assert (both["status"], both["name"]) == ("ACTIVE", "renamed")
    events = [e["event"] for e in client.get(f"{URL}/{p['id']}/history").get_json()["items"]]
    assert events == ["create", "start", "pause", "update", "resume"]


def test_patch_fields_roll_back_with_a_refused_status_change(client, h):
    """One transaction: a rename sent with a status whose guard fails is not applied."""
    g = h.global_()
    p = h.project(g, "alpha")  # the GLOBAL is CREATED: the project cannot start
    assert_problem(client.patch(f"{URL}/{p['id']}", json={"name": "renamed",
                                                          "status": "ACTIVE"}),
                   409, "parent-not-active")
    after = client.get(f"{URL}/{p['id']}").get_json()
    assert (after["name"], after["status"], after["version"]) == ("alpha", "CREATED", 1)
    events = [e["event"] for e in client.get(f"{URL}/{p['id']}/history").get_json()["items"]]
    assert events == ["create"]


def test_patch_status_that_no_event_reaches_is_an_invalid_transition(client, h):
    g = h.global_()
    for status in ("CREATED", "PAUSED"):
        body = assert_problem(client.patch(f"{URL}/{g['id']}", json={"status": status}), 409,
                              "invalid-transition")
        assert body["current_status"] == "CREATED"
        assert body["allowed_events"] == ["start", "archive"]
    assert client.get(f"{URL}/{g['id']}").get_json()["version"] == 1


def test_patch_needs_something_to_change(client, h):
    g = h.global_()
    body = assert_problem(client.patch(f"{URL}/{g['id']}", json={"replace": True}), 422)
    assert "_schema" in body["errors"]
    body = assert_problem(client.patch(f"{URL}/{g['id']}", json={"colour": "red"}), 422)
    assert body["errors"] == {"colour": ["Unknown field."]}


def test_if_match_is_honoured_by_patch_delete_and_lifecycle(client, h):
    g = h.global_()
    url = f"{URL}/{g['id']}"
    stale = {"If-Match": '"7"'}
    body = assert_problem(client.patch(url, json={"name": "x"}, headers=stale), 412,
                          "concurrent-modification")
    assert (body["version"], body["expected_version"]) == (1, 7)
    assert_problem(client.post(f"{url}/start", headers=stale), 412)
    assert_problem(client.patch(url, json={"status": "ACTIVE"}, headers=stale), 412)
    assert_problem(client.delete(url, headers=stale), 412)
    assert_problem(client.patch(url, json={"name": "x"}, headers={"If-Match": "nonsense"}), 412)
    assert_problem(client.patch(url, json={"name": "x"}, headers={"If-Match": 'W/"1"'}), 412)
    renamed = client.patch(url, json={"name": "x"}, headers={"If-Match": '"1"'})
    assert renamed.status_code == 200 and renamed.headers["ETag"] == '"2"'
    started = client.post(f"{url}/start", headers={"If-Match": '"5", "2"'})
    assert started.status_code == 200 and started.headers["ETag"] == '"3"'
    assert client.patch(url, json={"name": "y"}, headers={"If-Match": "*"}).status_code == 200


@pytest.mark.parametrize("header", [
    '"01"', '"1 "', '"+1"', "1", 'W/"1"', 'w/"1"', '"1" junk', '"1", *', '"٣"', '""',
    '"7", W/"1"', '"2", "3"'])
def test_if_match_compares_tags_strongly(client, h, header):
    """RFC 9110: If-Match matches only a strong tag equal to the ETag, character by
    character; at version 1 none of these does."""
    g = h.global_()
    assert_problem(client.patch(f"{URL}/{g['id']}", json={"name": "x"},
                                headers={"If-Match": header}), 412)
    assert client.get(f"{URL}/{g['id']}").get_json()["name"] == "global"


@pytest.mark.parametrize("headers", [
    [("If-Match", '"1"')], [("If-Match", ' "01", "1" ')], [("If-Match", 'W/"2", "1"')],
    [("If-Match", '"5"'), ("If-Match", '"1"')], [("If-Match", '"a,b", "1"')],
    [("If-Match", "*")]])
def test_if_match_with_the_current_tag_in_a_list_applies(client, h, headers):
    g = h.global_()
    response = client.patch(f"{URL}/{g['id']}", json={"name": "x"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"] == '"2"'


def test_if_match_star_on_a_missing_instance_is_404(client):
    assert_problem(client.patch(f"{URL}/{NOBODY}", json={"name": "x"},
                                headers={"If-Match": "*"}), 404)


def test_a_list_of_tags_is_checked_by_the_write_itself(client, h, app, monkeypatch):
    """Every version an If-Match list names goes to the write, which checks the instance
    is at one of them in the statement that writes: nothing is read before it, so a change
    from one listed version to another in between is no 412."""
    g = h.global_()
    manager = app.extensions[EXTENSION].manager
    manager.update(g["id"], metadata={"moved": True})  # version 1 -> 2

    def no_read(instance_id):
        raise AssertionError("If-Match must not be resolved by a read before the write")

    monkeypatch.setattr(manager, "get", no_read)
    monkeypatch.setattr(manager.repository, "get", no_read)
    response = client.patch(f"{URL}/{g['id']}", json={"name": "x"},
                            headers={"If-Match": '"1", "2"'})
    assert response.status_code == 200 and response.headers["ETag"] == '"3"'
    started = client.post(f"{URL}/{g['id']}/start", headers={"If-Match": '"3", "9"'})
    assert started.status_code == 200
    body = assert_problem(client.patch(f"{URL}/{g['id']}", json={"name": "y"},
                                       headers={"If-Match": '"9", "5"'}), 412,
                          "concurrent-modification")
    assert (body["version"], body["expected_version"]) == (4, [5, 9])
    monkeypatch.undo()
    assert client.get(f"{URL}/{g['id']}").get_json()["name"] == "x"


def test_delete_removes_the_subtree_and_keeps_history(client, h):
    _g, p, run = h.chain()
    response = client.delete(f"{URL}/{p['id']}", headers={"X-Actor": "ops"})
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"id": p["id"], "deleted": [run["id"], p["id"]], "stopped": []}
    assert_problem(client.get(f"{URL}/{p['id']}"), 404, "not-found")
    history = client.get(f"{URL}/{run['id']}/history").get_json()["items"]
    assert [e["event"] for e in history] == ["create", "delete"]
    assert history[-1]["actor"] == "ops" and history[-1]["cause"] == p["id"]


def test_delete_refuses_a_running_subtree_unless_forced(client, h):
    g, p, run = h.chain()
    for instance in (g, p, run):
        h.event(instance, "start")
    body = assert_problem(client.delete(f"{URL}/{p['id']}"), 409, "instance-running")
    assert set(body["running"]) == {p["id"], run["id"]}
    forced = client.delete(f"{URL}/{p['id']}?force=true&reason=cleanup").get_json()
    assert {c["id"] for c in forced["stopped"]} == {p["id"], run["id"]}
    assert set(forced["deleted"]) == {p["id"], run["id"]}


def test_static_routes_are_not_taken_for_an_id(client, h):
    assert_problem(client.get(f"{URL}/global"), 404, "not-found")  # none yet: the library's
    g = h.global_()
    a = h.project(g, "alpha")
    sub = h.project(a, "alpha-sub", project_id="alpha")
    run = h.run(sub, "alpha-run")
    h.project(g, "beta")
    response = client.get(f"{URL}/global")
    assert response.status_code == 200 and response.get_json()["id"] == g["id"]
    assert response.headers["ETag"] == '"1"'
    projects = client.get(f"{URL}/projects/alpha").get_json()
    assert [i["id"] for i in projects["items"]] == [a["id"], sub["id"]]
    runs = client.get(f"{URL}/projects/alpha/orchestrations").get_json()
    assert [i["id"] for i in runs["items"]] == [run["id"]]
    assert client.get(f"{URL}/projects/nobody").get_json()["items"] == []
    page = client.get(f"{URL}/projects/alpha?limit=1&after=").get_json()
    assert [i["id"] for i in page["items"]] == [a["id"]] and page["total"] is None
    rest = client.get(f"{URL}/projects/alpha?limit=1&after={page['next']}").get_json()
    assert [i["id"] for i in rest["items"]] == [sub["id"]] and rest["next"] is None


def test_an_id_that_is_not_a_uuid_is_an_unknown_url(client):
    for path in ("not-a-uuid", "12345", "not-a-uuid/children"):
        body = assert_problem(client.get(f"{URL}/{path}"), 404, "not-found")
        assert "UUID" in body["detail"]


def test_history_pages_oldest_first_and_404_for_an_id_never_seen(client, h):
    g = h.global_()
    for k in range(3):
        client.patch(f"{URL}/{g['id']}", json={"name": f"g{k}"})
    page = client.get(f"{URL}/{g['id']}/history?limit=3").get_json()
    assert [e["event"] for e in page["items"]] == ["create", "update", "update"]
    assert page["next_offset"] == 3 and page["items"][0].keys() == {
        "id", "seq", "instance_id", "event", "from_status", "to_status", "actor", "reason",
        "cause", "at"}
    rest = client.get(f"{URL}/{g['id']}/history?offset=3").get_json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    assert_problem(client.get(f"{URL}/00000000-0000-4000-8000-000000000000/history"), 404)


def test_effective_config_health_and_heartbeat(client, h):
    g = h.global_()
    p = h.project(g, "alpha", config={"tags": ["gpu"]})
    run = h.run(p, "alpha-run")
    effective = client.get(f"{URL}/{run['id']}/config/effective").get_json()
    assert effective["id"] == run["id"] and effective["config"]["tags"] == ["gpu"]
    assert effective["provenance"]["tags"] == p["id"]
    for instance in (g, p, run):
        h.event(instance, "start")
    health = client.get(f"{URL}/{run['id']}/health").get_json()
    assert health["status"] == "healthy" and health["instance_status"] == "ACTIVE"
    checks = {c["name"]: c for c in health["checks"]}
    assert "no heartbeat since it started" in checks["heartbeat"]["detail"]
    assert client.get(f"{URL}/{run['id']}").get_json()["heartbeat_at"] is None
    beat = client.post(f"{URL}/{run['id']}/heartbeat")
    assert beat.status_code == 200 and "ETag" not in beat.headers  # the version is unchanged
    assert sorted(beat.get_json()) == ["heartbeat_at", "id", "status"]
    assert beat.get_json()["status"] == "ACTIVE" and beat.get_json()["id"] == run["id"]
    beat_at = datetime.fromisoformat(beat.get_json()["heartbeat_at"])
    assert beat_at.utcoffset() is not None and beat_at >= datetime.fromisoformat(
        client.get(f"{URL}/{run['id']}").get_json()["started_at"])
    assert client.get(f"{URL}/{run['id']}").get_json()["heartbeat_at"] == \
        beat.get_json()["heartbeat_at"]
    assert client.get(f"{URL}/{run['id']}/health").get_json()["status"] == "healthy"
    rollup = client.get(f"{URL}/{g['id']}/health?subtree=true").get_json()
    assert sum(rollup["subtree"].values()) == 3 and rollup["status"] == "healthy"
    assert_problem(client.get(f"{URL}/{g['id']}/health?subtree=maybe"), 400)


def test_heartbeat_on_an_archived_instance_is_refused(client, h):
    g = h.global_()
    h.event(g, "archive")
    body = assert_problem(client.post(f"{URL}/{g['id']}/heartbeat"), 409, "invalid-transition")
    assert body["current_status"] == "ARCHIVED" and body["allowed_events"] == []


def test_events_feed_reads_by_cursor(client, h):
    g, _p, _ = h.chain()
    h.event(g, "start", headers={"X-Actor": "alice"})
    first = client.get("/api/v1/events?limit=2").get_json()
    assert [e["event"] for e in first["items"]] == ["create", "create"]
    assert first["after"] == 0 and first["next_after"] == first["items"][-1]["seq"]
    rest = client.get(f"/api/v1/events?after={first['next_after']}").get_json()
    assert [e["event"] for e in rest["items"]] == ["create", "start"]
    assert rest["items"][-1]["actor"] == "alice"
    done = client.get(f"/api/v1/events?after={rest['next_after']}").get_json()
    assert done["items"] == [] and done["next_after"] == rest["next_after"]


def test_fields_select_what_lists_and_trees_carry(client, h):
    """?fields= keeps only the fields asked for (id always), in pages and in both forms
    of the tree; a field instances do not have is a 400 naming `fields`."""
    g = h.global_()
    p = h.project(g, "alpha")
    h.run(p, "alpha-run")
    page = client.get(f"{URL}?fields=name,status&limit=2").get_json()
    assert [set(i) for i in page["items"]] == [{"id", "name", "status"}] * 2
    kids = client.get(f"{URL}/{g['id']}/children?fields=scope").get_json()
    assert kids["items"] == [{"id": p["id"], "scope": "PROJECT"}]
    flat = client.get(f"{URL}/{g['id']}/tree?format=flat&fields=name").get_json()
    assert [(r["depth"], r["parent_id"], r["instance"]["name"]) for r in flat["items"]] == [
        (0, None, "global"), (1, g["id"], "alpha"), (2, p["id"], "alpha-run")]
    assert set(flat["items"][2]["instance"]) == {"id", "name"}
    nested = client.get(f"{URL}/{g['id']}/tree?fields=status,config&max_depth=1").get_json()
    assert nested["tree"]["instance"]["config"]["limits"]["max_depth"] >= 1
    assert [c["instance"]["id"] for c in nested["tree"]["children"]] == [p["id"]]
    assert nested["tree"]["children"][0]["children"] == []
    body = assert_problem(client.get(f"{URL}?fields=name,secret"), 400, "invalid-query")
    assert "secret" in str(body["errors"]["fields"])


def test_replace_takes_a_json_boolean_only(client, h):
    g = h.global_()
    body = assert_problem(client.patch(f"{URL}/{g['id']}", json={"name": "x", "replace": 1}),
                          422, "validation-error")
    assert "replace" in body["errors"]
    assert client.get(f"{URL}/{g['id']}").get_json()["name"] == "global"
