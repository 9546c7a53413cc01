"""Scoped tokens in the library: created with a secret shown once (only its hash stored),
checked, listed, expired and revoked; a token covers its root's subtree and nothing above
or beside it, at a cost that follows the instance's depth."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hopper_graph import NotFound, ValidationError
from hopper_graph.cursors import EARLIEST as FIRST_AT
from hopper_graph.cursors import FIRST
from hopper_graph.errors import Forbidden
from hopper_graph.tokens import Role, hash_secret
from tests.factories import make_global, make_orchestration, make_project
from tests.integration.test_read_paths import db_hits


@pytest.fixture
def tree(manager):
    g = make_global(manager, name="g")
    web = make_project(manager, g, name="website")
    other = make_project(manager, g, name="billing")
    run = make_orchestration(manager, web, name="web-run")
    deep = make_orchestration(manager, run, name="web-phase")
    return {"g": g, "web": web, "other": other, "run": run, "deep": deep}


def test_a_token_grants_its_role_on_its_subtree_only(manager, tree):
    new = manager.tokens.create(tree["web"].id, "operator", description="runner", actor="me")
    grant = manager.tokens.authenticate(new.secret)
    assert grant is not None and grant.role is Role.OPERATOR
    assert grant.root_id == tree["web"].id and not grant.whole_graph
    covers = {name: manager.tokens.covers(grant, i.id) for name, i in tree.items()}
    assert covers == {"g": False, "web": True, "other": False, "run": True, "deep": True}
    assert not manager.tokens.covers(grant, "00000000-0000-4000-8000-000000000000")
    assert new.info.root_name == "website" and new.info.created_by == "me"


def test_only_the_hash_of_the_secret_is_stored(manager, tree, driver, database):
    new = manager.tokens.create(tree["web"].id, "reader")
    records, _, _ = driver.execute_query(
        "MATCH (t:HopperToken)-[:GRANTS]->(r) RETURN properties(t) AS p, r.id AS root",
        database_=database)
    [record] = records
    assert record["root"] == tree["web"].id
    assert new.secret not in map(str, record["p"].values())
    assert record["p"]["hash"] == hash_secret(new.secret)


def test_a_wrong_secret_or_a_revoked_or_expired_token_authenticates_nothing(manager, tree):
    new = manager.tokens.create(tree["web"].id, "admin")
    tampered = new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B")
    assert manager.tokens.authenticate(tampered) is None
    assert manager.tokens.authenticate("not-a-token") is None
    revoked = manager.tokens.revoke(new.info.id)
    assert revoked.status == "revoked" and manager.tokens.authenticate(new.secret) is None
    assert manager.tokens.revoke(new.info.id).revoked_at == revoked.revoked_at
    short = manager.tokens.create(tree["web"].id, "reader", expires_in=timedelta(seconds=1))
    assert manager.tokens.authenticate(short.secret) is not None
    manager.tokens.graph.write_rows(  # let it run out, without waiting
        "MATCH (t:HopperToken {id: $id}) SET t.expires_at = datetime() - duration('PT1S')",
        id=short.info.id)
    assert manager.tokens.authenticate(short.secret) is None
    statuses = {t.id: t.status for t in manager.tokens.list()}
    assert statuses == {new.info.id: "revoked", short.info.id: "expired"}
    assert manager.tokens.counts() == (0, 2)


def test_bad_input_is_refused_naming_the_field(manager, tree):
    with pytest.raises(NotFound):
        manager.tokens.create("00000000-0000-4000-8000-000000000000", "reader")
    with pytest.raises(ValidationError) as exc:
        manager.tokens.create(tree["web"].id, "owner")
    assert "role" in exc.value.errors
    with pytest.raises(ValidationError) as exc:
        manager.tokens.create(tree["web"].id, "reader", expires_in=timedelta(0))
    assert "expires" in exc.value.errors
    with pytest.raises(NotFound):
        manager.tokens.revoke("0123456789abcdef")
    assert manager.tokens.list() == []


def test_a_token_on_the_global_instance_covers_the_whole_graph(manager, tree):
    grant = manager.tokens.authenticate(manager.tokens.create(tree["g"].id, "reader").secret)
    assert grant is not None and grant.whole_graph


def test_a_token_whose_root_is_deleted_is_void(manager, tree):
    new = manager.tokens.create(tree["run"].id, "admin")
    manager.delete(tree["run"].id, force=True)
    assert manager.tokens.authenticate(new.secret) is None
    assert [t.status for t in manager.tokens.list()] == ["orphaned"]


def test_a_scoped_listing_shows_the_subtree_only(manager, tree):
    page = manager.list(within=tree["web"].id, after=FIRST)
    assert {i.name for i in page.items} == {"website", "web-run", "web-phase"}
    page = manager.list(within=tree["web"].id, scope="ORCHESTRATION", limit=1, after=FIRST)
    assert [i.name for i in page.items] == ["web-run"] and page.next is not None
    page = manager.list(within=tree["web"].id, scope="ORCHESTRATION", after=page.next)
    assert [i.name for i in page.items] == ["web-phase"] and page.next is None
    assert manager.list(within=tree["web"].id).total == 3
    assert manager.list(within=tree["other"].id, project_id="website").items == []


def test_the_check_costs_the_depth_not_the_graph(manager, tree, driver, database):
    """Many instances beside the target's chain cost the check nothing."""
    params = {"root": tree["web"].id, "id": tree["deep"].id}
    before = db_hits(driver, database, "instance_in_subtree", **params)
    for k in range(15):
        make_orchestration(manager, tree["run"], name=f"sibling-{k}")
        make_orchestration(manager, tree["other"], name=f"elsewhere-{k}")
    assert db_hits(driver, database, "instance_in_subtree", **params) == before


def test_authorize_names_the_role_and_root_needed(manager, tree):
    grant = manager.tokens.authenticate(manager.tokens.create(tree["web"].id, "operator").secret)
    assert grant is not None
    manager.tokens.authorize(grant, Role.OPERATOR, tree["run"].id)
    manager.tokens.authorize(grant, Role.READER, tree["web"].id)
    refusals = {}
    for role, target in ((Role.ADMIN, tree["run"].id), (Role.READER, tree["g"].id),
                         (Role.READER, "00000000-0000-4000-8000-000000000000"),
                         (Role.READER, None)):
        with pytest.raises(Forbidden) as exc:
            manager.tokens.authorize(grant, role, target)
        refusals[(role, target)] = exc.value.details
    assert refusals[(Role.ADMIN, tree["run"].id)] == {
        "required_role": "admin", "required_root": tree["run"].id,
        "token_role": "operator", "token_root": tree["web"].id}
    assert refusals[(Role.READER, None)]["required_root"] is None
    missing = refusals[(Role.READER, "00000000-0000-4000-8000-000000000000")]
    outside = refusals[(Role.READER, tree["g"].id)]
    assert missing.keys() == outside.keys()  # an id that exists elsewhere reads the same


def test_a_scoped_listing_costs_its_subtree_not_the_graph(manager, tree, driver, database):
    params = {"root": tree["web"].id, "scope": None, "status": None, "parent_id": None,
              "project_id": None, "selector": [], "after_at": FIRST_AT, "after_id": "", "skip": 0,
              "limit": 10, "with_total": False}
    before = db_hits(driver, database, "list_in_subtree", **params)
    for k in range(15):
        make_orchestration(manager, tree["other"], name=f"elsewhere-{k}")
    assert db_hits(driver, database, "list_in_subtree", **params) == before


def test_a_subtree_feed_page_reads_a_bounded_stretch_and_misses_nothing(manager, tree):
    for k in range(6):
        make_orchestration(manager, tree["other"], name=f"noise-{k}")
    manager.update(tree["run"].id, metadata={"touched": True})
    everything = manager.feed.read(0, tree["web"].id, limit=1000)
    head = manager.feed.head()
    seen, after, pages = [], 0, 0
    while after < head:
        page, reached = manager.feed.read_within(after, tree["web"].id, limit=2, scan=3)
        assert len(page) <= 2 and reached > after  # always moves on
        seen += page
        after, pages = reached, pages + 1
    assert [e.seq for e in seen] == [e.seq for e in everything]
    assert {e.instance_id for e in seen} == {tree["web"].id, tree["run"].id, tree["deep"].id}
    assert pages >= head // 3
