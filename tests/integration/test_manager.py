"""InstanceManager beyond transitions: health, heartbeats, effective config."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hopper_graph import InvalidTransition, NotFound
from tests.factories import make_global, make_orchestration, make_project, make_run


@pytest.fixture
def chain(manager):
    """GLOBAL -> PROJECT -> sub-PROJECT -> ORCHESTRATION, all started."""
    g = make_global(manager, name="g", health={"heartbeat_timeout_seconds": 600},
                    tags=["fleet"])
    p = make_project(manager, g, name="p", config={"tags": ["team-a"]})
    sub = make_project(manager, p, name="sub",
                       config={"health": {"heartbeat_timeout_seconds": 30}})
    run = make_run(manager, sub, name="run", execution={"max_retries": 7})
    for i in (g, p, sub, run):
        manager.start(i.id)
    return g, p, sub, run


def test_effective_config_with_provenance(manager, chain):
    g, p, sub, run = chain
    eff = manager.effective_config(run.id)
    assert eff.config["execution"]["max_retries"] == 7
    assert eff.provenance["execution.max_retries"] == run.id
    assert eff.config["health"]["heartbeat_timeout_seconds"] == 30
    assert eff.provenance["health.heartbeat_timeout_seconds"] == sub.id
    assert eff.config["tags"] == ["team-a"]
    assert eff.provenance["tags"] == p.id
    assert eff.provenance["execution.max_concurrent_tasks"] == "default"
    top = manager.effective_config(g.id)
    assert top.provenance["health.heartbeat_timeout_seconds"] == g.id
    with pytest.raises(NotFound):
        manager.effective_config("00000000-0000-0000-0000-000000000000")


def age(driver, instance_id, hours=1):
    """Move an instance's clock back, as if ``hours`` had passed since it started and since
    its last heartbeat."""
    driver.execute_query(
        "MATCH (n:HopperInstance {id: $id}) SET n.started_at = n.started_at - $ago, "
        "n.heartbeat_at = n.heartbeat_at - $ago", id=instance_id, ago=timedelta(hours=hours))


def heartbeat_check(manager, instance_id):
    report = manager.health_check(instance_id)
    [check] = [c for c in report.checks if c.name == "heartbeat"]
    return report.status, check


def test_a_fresh_start_is_healthy_until_the_timeout_passes_without_a_heartbeat(
        manager, chain, driver):
    run = chain[3]
    status, check = heartbeat_check(manager, run.id)
    assert (status, check.status) == ("healthy", "pass")
    assert "no heartbeat since it started" in check.detail
    age(driver, run.id)
    status, check = heartbeat_check(manager, run.id)
    assert (status, check.status) == ("unhealthy", "fail")
    assert "no heartbeat since it started" in check.detail and "timeout is 30 s" in check.detail
    beat = manager.heartbeat(run.id)
    assert beat.heartbeat_at is not None and beat.version == manager.get(run.id).version
    report = manager.health_check(run.id)
    assert report.status == "healthy"
    assert {c.name for c in report.checks} == {"parent_status", "heartbeat", "child_headroom",
                                               "config"}


def test_a_restart_is_healthy_though_the_last_run_stopped_beating_long_ago(
        manager, chain, driver):
    """The heartbeat of the previous run is older than the timeout; the new run has not sent
    one yet, and its clock starts at its start."""
    sub = chain[2]  # PERSISTENT, so it can be started again; its timeout is 30 s
    manager.heartbeat(sub.id)
    age(driver, sub.id)
    assert heartbeat_check(manager, sub.id)[0] == "unhealthy"
    manager.stop(sub.id)
    restarted = manager.start(sub.id).instance
    assert restarted.heartbeat_at < restarted.started_at
    status, check = heartbeat_check(manager, sub.id)
    assert (status, check.status) == ("healthy", "pass")
    assert "no heartbeat since it started" in check.detail
    age(driver, sub.id, hours=2)  # once the new run's timeout passes, it is unhealthy again
    assert heartbeat_check(manager, sub.id)[0] == "unhealthy"


def test_stale_heartbeat_is_unhealthy(manager, chain, driver):
    run = chain[3]
    manager.heartbeat(run.id)
    age(driver, run.id)
    status, check = heartbeat_check(manager, run.id)
    assert status == "unhealthy"
    assert check.status == "fail" and "timeout is 30 s" in check.detail  # inherited from sub
    assert check.detail.startswith("last heartbeat ")


def test_headroom_and_parent_consistency(manager, driver):
    g = make_global(manager, name="g")
    p = make_project(manager, g, name="p", config={"limits": {"max_child_instances": 2}})
    make_orchestration(manager, p, name="r1")
    make_orchestration(manager, p, name="r2")
    report = manager.health_check(p.id)
    assert report.status == "degraded"
    assert {c.name: c.status for c in report.checks}["child_headroom"] == "warn"
    # An ACTIVE instance under a CREATED parent can only come from outside the library.
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.status = 'ACTIVE', "
                         "n.heartbeat_at = datetime()", id=p.id)
    bad = manager.health_check(p.id)
    assert {c.name: c.status for c in bad.checks}["parent_status"] == "fail"
    assert bad.status == "unhealthy"


def test_invalid_stored_config_is_unhealthy(manager, driver):
    g = make_global(manager, name="g")
    config = json.loads(manager.get(g.id).to_dict()["config"] and
                        json.dumps(manager.get(g.id).config))
    config["routing"]["strategy"] = "astrology"
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.config = $config",
                         id=g.id, config=json.dumps(config))
    report = manager.health_check(g.id)
    assert {c.name: c.status for c in report.checks}["config"] == "fail"
    assert report.status == "unhealthy"


def test_subtree_roll_up(manager, chain, driver):
    g, _p, _sub, run = chain
    for i in chain:
        manager.heartbeat(i.id)
    assert manager.health_check(g.id, subtree=True).subtree == {
        "healthy": 4, "unknown": 0, "degraded": 0, "unhealthy": 0}
    age(driver, run.id)
    report = manager.health_check(g.id, subtree=True)
    assert report.status == "unhealthy"
    assert report.unhealthy == [run.id]
    assert report.subtree["unhealthy"] == 1


def test_heartbeat_refused_when_archived_and_unknown_id(manager):
    g = make_global(manager, name="g")
    manager.archive(g.id)
    with pytest.raises(InvalidTransition):
        manager.heartbeat(g.id)
    assert manager.get(g.id).heartbeat_at is None  # refused means nothing written
    with pytest.raises(NotFound):
        manager.heartbeat("00000000-0000-0000-0000-000000000000")
