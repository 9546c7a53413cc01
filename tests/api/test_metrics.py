"""GET /metrics (issue 23, item 2): Prometheus text, named by Prometheus' rules, with no id as
a label; off with HOPPER_METRICS=0; behind the token when there is one. The test client
runs in one process: tests/api/test_metrics_served.py scrapes a real `serve` of 2 workers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import assert_problem

URL = "/api/v1/instances"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
Sample = tuple[str, frozenset[tuple[str, str]]]


def parse(text: str) -> dict[Sample, float]:
    """Every sample of a scrape: (name, labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def scrape(client, headers: dict[str, str] | None = None) -> dict[Sample, float]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))


def names(samples: Iterable[Sample]) -> set[str]:
    return {name for name, _ in samples}


def test_requests_writes_and_transactions_are_counted(client, h):
    before = scrape(client)
    g = h.global_()
    p = h.project(g, "alpha")
    for _ in range(3):
        assert client.get(f"{URL}/{p['id']}").status_code == 200
    assert client.get(f"{URL}/{g['id']}/nothing-here").status_code == 404
    h.event(g, "start")
    assert client.post(f"{URL}/{g['id']}/start").status_code == 409  # already ACTIVE
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    one = "/api/v1/instances/<uuid:instance_id>"
    assert grew("hopper_http_requests_total", method="GET", route=one, status="200") == 3
    assert grew("hopper_http_requests_total", method="POST", route=URL, status="201") == 2
    assert grew("hopper_http_requests_total", route="none", status="404") == 1
    assert grew("hopper_http_request_duration_seconds_count", method="GET", route=one) == 3
    assert grew("hopper_writes_total", kind="create", outcome="ok") == 2
    assert grew("hopper_writes_total", kind="start", outcome="ok") == 1
    assert grew("hopper_writes_total", kind="start", outcome="invalid-transition") == 1
    assert grew("hopper_neo4j_transactions_total", access="read", outcome="ok") >= 3
    assert grew("hopper_neo4j_transactions_total", access="write", outcome="ok") >= 3
    assert grew("hopper_neo4j_transaction_duration_seconds_count", access="write") >= 3
    assert value(after, "hopper_events_pending") >= 0
    assert ("hopper_events_pending", frozenset()) in after


def test_group_commit_batches_are_measured(client, h):
    g = h.global_()
    h.event(g, "start")
    before = scrape(client)
    for _ in range(2):
        assert client.post(f"{URL}/{g['id']}/heartbeat").status_code == 200
    after = scrape(client)
    name = "hopper_group_commit_batch_size_count"
    assert value(after, name, kind="heartbeat") - value(before, name, kind="heartbeat") == 2
    assert value(after, "hopper_writes_total", kind="heartbeat", outcome="ok") >= 2


def test_the_names_follow_prometheus_rules_and_no_label_is_an_id(client, h):
    g = h.global_()
    client.get(f"{URL}/{g['id']}")
    client.get(f"{URL}/{g['id']}/children")
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    ours = [family for family in text_string_to_metric_families(text)  # _created: 1 process
            if family.name.startswith("hopper_") and not family.name.endswith("_created")]
    assert {f.name for f in ours} >= {
        "hopper_http_requests", "hopper_http_request_duration_seconds", "hopper_writes",
        "hopper_neo4j_transactions", "hopper_neo4j_transaction_duration_seconds",
        "hopper_group_commit_batch_size", "hopper_events_pending",
        "hopper_event_streams_open"}
    for family in ours:
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if "duration" in family.name:
            assert family.name.endswith("_seconds")
        for sample in family.samples:
            assert not any(UUID.search(v) for v in sample.labels.values()), sample
    assert g["id"] not in text


def test_metrics_can_be_turned_off(make_app):
    client = make_app(HOPPER_METRICS="0").test_client()
    assert_problem(client.get("/metrics"), 404)


@pytest.mark.parametrize("sent, status", [(None, 401), ("Bearer wrong", 401),
                                           ("Bearer s3cret", 200)])
def test_metrics_need_the_token_when_there_is_one(make_app, sent, status):
    client = make_app(HOPPER_API_TOKEN="s3cret").test_client()
    response = client.get("/metrics", headers={"Authorization": sent} if sent else {})
    assert response.status_code == status
    if status == 401:
        assert_problem(response, 401, "unauthorized")
