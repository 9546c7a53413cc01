"""Hostile input, case by case: each named request is refused with the right problem, and
the graph is exactly as it was (the same nodes, edges, and instances at the same versions).

Strings that look like Cypher, or hold unicode and control characters, are not refused:
they are data, stored and returned verbatim, and nothing else in the graph moves.

The cases that once failed are listed in docs/reliability.md, "Found and fixed".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import make_global, make_orchestration, make_project
from tests.reliability.conftest import API, PROBLEM, URL, assert_consistent, assert_no_leak, census

MIB = 1024 * 1024
MAX_PROBLEM_BYTES = 64 * 1024
"""No refusal should cost the server more to write than this."""
CYPHER = "x'}) MATCH (n) DETACH DELETE n //"


@dataclass
class Scene:
    """GLOBAL (ACTIVE) -> PROJECT alpha (ACTIVE) -> ORCHESTRATION run (CREATED)."""

    client: FlaskClient
    global_id: str
    project_id: str
    run_id: str


@pytest.fixture
def scene(make_app, lib) -> Scene:
    g = make_global(lib)
    lib.start(g.id)
    p = make_project(lib, g, name="alpha")
    lib.start(p.id)
    run = make_orchestration(lib, p, name="run-1")
    return Scene(make_app().test_client(), g.id, p.id, run.id)


Send = Callable[[Scene], TestResponse]


def send(method: str, path: Callable[[Scene], str] | str, body: Any = None, *,
         data: Callable[[], bytes | str] | bytes | str | None = None,
         content_type: str | None = "application/json",
         headers: dict[str, str] | None = None) -> Send:
    """A request to make against the scene: ``body`` is sent as JSON, ``data`` as it is."""
    def request(s: Scene) -> TestResponse:
        url = path(s) if callable(path) else path
        payload = data() if callable(data) else data
        if body is not None:
            payload = json.dumps(body(s) if callable(body) else body)
        return s.client.open(url, method=method, data=payload, headers=headers,
                             content_type=content_type if payload is not None else None)
    return request


def nested(depth: int, leaf: str = "1", key: str = "a") -> str:
    """JSON text of an object nested ``depth`` levels deep."""
    return f'{{"{key}":' * depth + leaf + "}" * depth


def run_path(suffix: str = "") -> Callable[[Scene], str]:
    return lambda s: f"{URL}/{s.run_id}{suffix}"


def project_path(suffix: str = "") -> Callable[[Scene], str]:
    return lambda s: f"{URL}/{s.project_id}{suffix}"


def child_of_alpha(**fields: Any) -> Callable[[Scene], dict[str, Any]]:
    return lambda s: {"name": "child", "scope": "ORCHESTRATION", "parent_id": s.project_id,
                      **fields}


def deep_create(depth: int, field: str) -> Callable[[], str]:
    def text() -> str:
        return (f'{{"name": "deep", "scope": "GLOBAL", "{field}": '
                f"{nested(depth)}}}")
    return text


def case(name: str, request: Send, status: int, code: str,
         marks: pytest.MarkDecorator | tuple[()] = ()) -> Any:
    """One named hostile request and the problem it must get."""
    return pytest.param(request, status, code, id=name, marks=marks)



CASES = [
    # -- malformed JSON ------------------------------------------------------------------
    case("json-truncated", send("POST", URL, data='{"name": '), 400, "malformed-json"),
    case("json-trailing-garbage", send("POST", URL, data='{"name": "g", "scope": "GLOBAL"} x'),
     400, "malformed-json"),
    case("json-single-quotes", send("POST", URL, data="{'name': 'g', 'scope': 'GLOBAL'}"), 400,
     "malformed-json"),
    case("json-invalid-utf8", send("POST", URL, data=b'{"name": "\xff\xfe", "scope": "GLOBAL"}'),
     400, "malformed-json"),
    case("json-malformed-patch", send("PATCH", run_path(), data='{"name":'), 400,
     "malformed-json"),
    case("json-malformed-lifecycle", send("POST", run_path("/start"), data="{"), 400,
     "malformed-json"),
    case("json-nan-and-infinity", send("PATCH", run_path(),
                 data='{"metadata": {"n": NaN, "i": Infinity}}'), 400, "malformed-json"),
    case("json-minus-infinity", send("POST", URL, data='{"name": "g", "scope": "GLOBAL", '
                                     '"metadata": {"i": -Infinity}}'), 400, "malformed-json"),
    case("json-float-overflow", send("PATCH", run_path(), data='{"metadata": {"f": 1e400}}'),
         400, "malformed-json"),
    # -- wrong content type --------------------------------------------------------------
    case("content-type-text-plain", send("POST", URL, data='{"name": "g", "scope": "GLOBAL"}',
                                     content_type="text/plain"), 415,
     "unsupported-media-type"),
    case("content-type-form", send("POST", URL, data="name=g&scope=GLOBAL",
                               content_type="application/x-www-form-urlencoded"), 415,
     "unsupported-media-type"),
    case("content-type-multipart", send("POST", URL, data="--b\r\n\r\nx\r\n--b--\r\n",
                                    content_type="multipart/form-data; boundary=b"), 415,
     "unsupported-media-type"),
    case("content-type-xml-patch", send("PATCH", run_path(), data="<name>x</name>",
                                    content_type="application/xml"), 415,
     "unsupported-media-type"),
    case("content-type-missing", send("POST", run_path("/start"), data='{"reason": "r"}',
                                  content_type=None), 415, "unsupported-media-type"),
    # -- 10 MiB bodies ---------------------------------------------------------------------
    case("10mib-create", send("POST", URL, data=lambda: '{"name": "' + "x" * (10 * MIB) +
                          '", "scope": "GLOBAL"}'), 413, "content-too-large"),
    case("10mib-patch", send("PATCH", run_path(), data=lambda: '{"metadata": {"blob": "' +
                         "x" * (10 * MIB) + '"}}'), 413, "content-too-large"),
    case("10mib-lifecycle", send("POST", run_path("/start"),
                             data=lambda: '{"reason": "' + "x" * (10 * MIB) + '"}'), 413,
     "content-too-large"),
    # -- deep nesting ----------------------------------------------------------------------
    case("config-nested-10000", send("POST", URL, data=deep_create(10_000, "config")), 400,
     "malformed-json"),
    case("metadata-nested-10000", send("POST", URL, data=deep_create(10_000, "metadata")), 400,
     "malformed-json"),
    case("array-nested-10000", send("POST", URL, data='{"name": ' + "[" * 10_000 + "]" * 10_000
                                + ', "scope": "GLOBAL"}'), 400, "malformed-json"),
    case("config-nested-900", send("POST", URL, data=deep_create(900, "config")),
         422, "validation-error"),
    case("metadata-nested-65-levels", send("PATCH", run_path(), data='{"metadata": '
                                           + nested(64) + "}"), 422, "validation-error"),
    case("array-in-reason-nested-100", send("POST", run_path("/start"), data='{"reason": '
                                            + "[" * 100 + "]" * 100 + "}"), 422,
         "validation-error"),
    # -- huge arrays -------------------------------------------------------------------------
    case("array-as-body", send("POST", URL, data=lambda: json.dumps([0] * 200_000)), 422,
     "validation-error"),
    case("array-as-name", send("POST", URL, {"name": list(range(100_000)), "scope": "GLOBAL"}),
     422, "validation-error"),
    case("array-as-reason", send("POST", run_path("/start"), {"reason": ["r"] * 100_000}), 422,
     "validation-error"),
    case("array-of-wrong-items-in-config",
                 send("POST", URL, child_of_alpha(config={"tags": list(range(100_000))})),
                 422, "validation-error"),
    # -- null for every field ------------------------------------------------------------
    case("null-every-create-field", send("POST", URL, dict.fromkeys((
        "id", "name", "scope", "parent_id", "project_id", "instance_type", "config",
        "metadata"))), 422, "validation-error"),
    case("null-every-patch-field", send("PATCH", run_path(), dict.fromkeys((
        "name", "config", "metadata", "status", "replace", "reason", "actor"))), 422,
     "validation-error"),
    case("null-body-create", send("POST", URL, data="null"), 422, "validation-error"),
    case("null-body-patch", send("PATCH", run_path(), data="null"), 422, "validation-error"),
    case("null-body-lifecycle", send("POST", run_path("/start"), data="null"), 422,
     "validation-error"),
    # -- negative and huge numbers ---------------------------------------------------------
    case("limit-negative", send("GET", f"{URL}?limit=-1"), 400, "invalid-query"),
    case("limit-zero", send("GET", f"{URL}?limit=0"), 400, "invalid-query"),
    case("limit-huge", send("GET", f"{URL}?limit={10**20}"), 400, "invalid-query"),
    case("offset-negative", send("GET", f"{URL}?offset=-1"), 400, "invalid-query"),
    case("offset-not-a-number", send("GET", f"{URL}?offset=1e3"), 400, "invalid-query"),
    case("max-depth-negative", send("GET", project_path("/tree?max_depth=-5")), 400,
     "invalid-query"),
    case("after-negative", send("GET", f"{API}/events?after=-1"), 400, "invalid-query"),
    case("config-limit-negative", send("POST", URL, child_of_alpha(
        config={"limits": {"max_child_instances": -1}})), 422, "validation-error"),
    case("config-limit-not-a-number", send("POST", URL, child_of_alpha(
        config={"limits": {"max_child_instances": "ten"}})), 422, "validation-error"),
    case("offset-huge", send("GET", f"{URL}?offset={10**20}"), 400, "invalid-query"),
    case("offset-past-int32", send("GET", project_path(f"/descendants?offset={2**40}")),
         400, "invalid-query"),
    case("offset-just-past-bound", send("GET", project_path(f"/children?offset={2 * 10**9 + 1}")),
         400, "invalid-query"),
    case("history-offset-huge", send("GET", project_path(f"/history?offset={10**20}")),
         400, "invalid-query"),
    case("after-huge", send("GET", f"{API}/events?after={10**20}"), 400, "invalid-query"),
    case("after-past-int64", send("GET", f"{API}/events?after={2**63}"), 400, "invalid-query"),
    case("max-depth-huge", send("GET", project_path(f"/tree?max_depth={10**20}")),
         400, "invalid-query"),
    case("digits-past-int-max-str-digits", send("GET", f"{URL}?offset={'9' * 5000}"), 400,
         "invalid-query"),
    case("integer-past-int64-in-metadata", send("PATCH", run_path(),
                                                data='{"metadata": {"n": ' + "9" * 30 + "}}"),
         422, "validation-error"),
    case("integer-past-int64-in-config", send("POST", URL, child_of_alpha(
        config={"limits": {"max_child_instances": 2**64}})), 422, "validation-error"),
    # -- unknown parameters and fields -----------------------------------------------------
    case("unknown-query-param-is-refused", send("DELETE", project_path("?forse=true")), 400,
     "invalid-query"),
    case("query-param-where-none-is-taken", send("POST", run_path("/start?force=true")), 400,
         "invalid-query"),
    case("unknown-body-field", send("POST", URL, child_of_alpha(owner="mallory")), 422,
     "validation-error"),
    # -- ids that are not UUIDs --------------------------------------------------------------
    case("non-uuid-get", send("GET", f"{URL}/not-a-uuid"), 404, "not-found"),
    case("non-uuid-lifecycle", send("POST", f"{URL}/12345/start"), 404, "not-found"),
    case("non-uuid-patch", send("PATCH", f"{URL}/{quote('DROP DATABASE')}", {"name": "x"}), 404,
     "not-found"),
    case("non-uuid-delete", send("DELETE", f"{URL}/..%2F..%2Fetc%2Fpasswd"), 404, "not-found"),
    case("non-uuid-parent-id", send("POST", URL, {"name": "c", "scope": "ORCHESTRATION",
                                              "parent_id": "not-a-uuid"}), 422,
     "validation-error"),
    case("non-uuid-own-id", send("POST", URL, {"id": "1; DROP", "name": "g", "scope": "GLOBAL"}),
     422, "validation-error"),
    case("non-uuid-query-filter", send("GET", f"{URL}?parent_id={quote(CYPHER)}"), 400,
     "invalid-query"),
    case("unknown-uuid", send("POST", f"{URL}/00000000-0000-4000-8000-000000000000/stop"), 404,
     "not-found"),
    case("if-match-not-a-version", send("POST", run_path("/start"),
                                    headers={"If-Match": '"abc"'}), 412,
     "precondition-failed"),
    case("if-match-empty-tag", send("POST", run_path("/start"), headers={"If-Match": '""'}),
         412, "precondition-failed"),
    case("if-match-empty-tag-in-list", send("PATCH", run_path(), {"name": "x"},
                                            headers={"If-Match": '"", W/"1"'}), 412,
         "precondition-failed"),
    case("if-match-non-ascii-digits", send("DELETE", run_path(),
                                           headers={"If-Match": '"\u00b2"'}), 412,
         "precondition-failed"),
    case("if-match-huge-version", send("POST", run_path("/start"),
                                       headers={"If-Match": f'"{10**30}"'}), 412,
         "precondition-failed"),
    case("if-match-stale-version", send("POST", run_path("/start"), headers={"If-Match": '"7"'}),
     412, "concurrent-modification"),
    # -- strings the driver cannot carry ---------------------------------------------------
    case("lone-surrogate-in-name", send("POST", URL, data=lambda: json.dumps(
        {"name": "\ud800", "scope": "GLOBAL"})), 400, "invalid-text"),
    case("lone-surrogate-in-reason", send("POST", run_path("/start"),
                 data='{"reason": "\\udfff"}'), 400, "invalid-text"),
    case("lone-surrogate-in-metadata-key", send("PATCH", run_path(),
                 data='{"metadata": {"a": {"k\\ud83d": 1}}}'), 400, "invalid-text"),
    case("lone-surrogate-deep-in-config", send("POST", URL, child_of_alpha(
        config={"x": [{"y": "ok \udc00"}]})), 400, "invalid-text"),
]


@pytest.mark.parametrize(("request_", "status", "code"), CASES)
def test_hostile_request_is_refused_and_changes_nothing(scene, clean_graph, database,
                                                        request_, status, code):
    before = census(clean_graph, database)
    response = request_(scene)
    text = response.get_data(as_text=True)
    assert response.status_code == status, text[:500]
    assert response.mimetype == PROBLEM
    body = json.loads(text)
    assert body["status"] == status and body["code"] == code, body
    assert len(response.get_data()) <= MAX_PROBLEM_BYTES
    assert_no_leak(text)
    assert census(clean_graph, database) == before
    assert_consistent(clean_graph, database)


def test_unknown_query_parameters_are_refused_by_name(scene, clean_graph, database):
    """An unknown query parameter is refused (400 naming it), not silently dropped; a
    known one given twice counts once (the first)."""
    before = census(clean_graph, database)
    noisy = scene.client.get(f"{URL}?scope=PROJECT&bogus=1&{quote(CYPHER)}=1")
    assert noisy.status_code == 400 and noisy.mimetype == PROBLEM
    body = noisy.get_json()
    assert body["code"] == "invalid-query"
    assert set(body["errors"]) == {"bogus", CYPHER}
    for path in (f"{URL}/{scene.run_id}?fields=name", f"{URL}/global?x=1",
                 f"{API}/events?after=0&cursor=1"):
        refused = scene.client.get(path)
        assert refused.status_code == 400 and refused.get_json()["code"] == "invalid-query", \
            path
    twice = scene.client.get(f"{URL}?scope=PROJECT&limit=5&limit=6")
    assert twice.status_code == 200
    assert twice.get_json()["limit"] == 5
    assert [i["id"] for i in twice.get_json()["items"]] == [scene.project_id]
    assert census(clean_graph, database) == before
    assert_consistent(clean_graph, database)


FIELD_NAMED = [
    pytest.param(send("GET", f"{URL}?offset={10**20}"), "offset", id="offset"),
    pytest.param(send("GET", f"{URL}?limit={10**20}"), "limit", id="limit"),
    pytest.param(send("GET", f"{API}/events?after={10**20}"), "after", id="after"),
    pytest.param(send("GET", project_path(f"/tree?max_depth={10**20}")), "max_depth",
                 id="max-depth"),
    pytest.param(send("DELETE", project_path("?forse=true")), "forse", id="unknown-param"),
    pytest.param(send("POST", URL, data=deep_create(900, "config")), "config",
                 id="nesting"),
    pytest.param(send("POST", URL, data=lambda: json.dumps(
        {"name": "\ud800", "scope": "GLOBAL"})), "name", id="surrogate"),
    pytest.param(send("PATCH", run_path(), data='{"metadata": {"a": ["x", "\\udfff"]}}'),
                 "metadata.a.1", id="surrogate-in-list"),
    pytest.param(send("PATCH", run_path(), data='{"metadata": {"n": ' + "9" * 30 + "}}"),
                 "metadata.n", id="integer-past-int64"),
]


@pytest.mark.parametrize(("request_", "field"), FIELD_NAMED)
def test_refusals_name_the_field(scene, request_, field):
    body = request_(scene).get_json()
    assert field in body["errors"], body


def test_long_error_lists_are_capped(scene, clean_graph, database):
    """One message per bad item would make the answer larger than the request: at most 100
    messages, each clipped, and errors_omitted counts the rest."""
    response = scene.client.post(URL, json={
        "name": "child", "scope": "ORCHESTRATION", "parent_id": scene.project_id,
        "config": {"tags": list(range(100_000))}})
    assert response.status_code == 422
    body = response.get_json()
    messages = [m for ms in body["errors"].values() for m in ms]
    assert 0 < len(messages) <= 100
    assert all(len(m) <= 500 for m in messages)
    assert len(messages) + body["errors_omitted"] >= 100_000
    assert len(response.get_data()) <= MAX_PROBLEM_BYTES
    assert_consistent(clean_graph, database)


def test_nesting_up_to_the_limit_is_stored_and_patchable(scene, clean_graph, database):
    """64 levels (the body counts as one) are accepted, returned as sent, and merged into."""
    deep = '{"metadata": ' + nested(63) + "}"
    for _ in range(2):
        response = scene.client.patch(f"{URL}/{scene.run_id}", data=deep,
                                      content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
    stored = scene.client.get(f"{URL}/{scene.run_id}").get_json()["metadata"]
    assert stored == json.loads(nested(63))
    assert_consistent(clean_graph, database)


NAMES = [
    CYPHER,
    '"; MATCH (n) DETACH DELETE n; //',
    "$id} RETURN 1 UNION MATCH (n) DETACH DELETE n //",
    "`x`) DETACH DELETE n WITH 1 AS x CALL db.clearQueryCaches() //",
    "{name: 'x'}",
    "名前-ノード-🚀",
    "tab\there, newline\nthere, return\rthere",
    "nul\x00byte and bell\x07",
    "right-to-left \u202eoverride and zero\u200bwidth\ufeff",
    "\\u0000 literal backslash-u and \\n",
    "n" * 255,
]


@pytest.mark.parametrize("name", NAMES, ids=[f"name-{i}" for i in range(len(NAMES))])
def test_strange_names_are_stored_and_returned_verbatim(scene, clean_graph, database, name):
    """Cypher-looking, unicode and control-character strings are data: stored as given,
    returned as given, and nothing else in the graph changes."""
    before = census(clean_graph, database)
    created = scene.client.post(URL, json={
        "name": name, "scope": "PROJECT", "parent_id": scene.global_id, "project_id": name,
        "metadata": {name: name}})
    assert created.status_code == 201, created.get_json()
    new = created.get_json()
    assert (new["name"], new["project_id"], new["metadata"]) == (name, name, {name: name})
    fetched = scene.client.get(f"{URL}/{new['id']}").get_json()
    assert (fetched["name"], fetched["project_id"], fetched["metadata"]) == \
        (name, name, {name: name})
    started = scene.client.post(f"{URL}/{new['id']}/start", json={"reason": name},
                                headers={"X-Actor": "mallory"})
    assert started.status_code == 200, started.get_json()
    by_project = scene.client.get(f"{URL}/projects/{quote(name, safe='')}")
    if "/" in name:  # routing decodes %2F before matching: such a project_id has no URL
        assert by_project.status_code == 404
    else:
        assert [i["id"] for i in by_project.get_json()["items"]] == [new["id"]]
    filtered = scene.client.get(f"{URL}?project_id={quote(name, safe='')}").get_json()
    assert [i["name"] for i in filtered["items"]] == [name]
    events = scene.client.get(f"{URL}/{new['id']}/history").get_json()["items"]
    assert [(e["event"], e["reason"]) for e in events] == [("create", None), ("start", name)]
    after = census(clean_graph, database)
    assert after["nodes"] == before["nodes"] + 3  # the instance and its two events
    assert set(map(tuple, before["instances"])) < set(map(tuple, after["instances"]))
    assert len(after["instances"]) == len(before["instances"]) + 1
    assert_consistent(clean_graph, database)


def test_deep_metadata_does_not_make_an_instance_unpatchable(scene, clean_graph, database):
    """Metadata nested 900 levels deep: refused outright, or stored and patchable again.
    The API refuses bodies nested deeper than 64 levels (422), so it is never stored."""
    deep = '{"metadata": ' + nested(900) + "}"
    first = scene.client.patch(f"{URL}/{scene.run_id}", data=deep,
                               content_type="application/json")
    second = scene.client.patch(f"{URL}/{scene.run_id}", data=deep,
                                content_type="application/json")
    assert first.status_code < 500 and second.status_code < 500
    assert_consistent(clean_graph, database)
