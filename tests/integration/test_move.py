"""Moving an instance (hopper_graph/move.py) against the real Neo4j: every rule a typed
error that names the instance and the rule, what follows from a move (project_id,
TopProject, depth, inherited config, the audit event and the feed), and the races."""

from __future__ import annotations

import pytest

from hopper_graph import (
    ConcurrentModification,
    DuplicateProject,
    InstanceStatus,
    LimitExceeded,
    NotFound,
    ParentArchived,
    ParentNotActive,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.checker import check_invariants
from hopper_graph.errors import GlobalNotMovable, MoveCycle, ParentMismatch
from tests.factories import make_global, make_orchestration, make_project
from tests.threads import race

S = InstanceStatus


def labels(driver, instance_id):
    with driver.session() as session:
        return set(session.run("MATCH (n:HopperInstance {id: $id}) RETURN labels(n) AS l",
                               id=instance_id).single()["l"])


@pytest.fixture
def two(manager):
    """GLOBAL g (started) -> PROJECTs a and b (started); a has run r with phase r1."""
    g = make_global(manager, name="g")
    manager.start(g.id)
    a = make_project(manager, g, name="a", project_id="pa")
    b = make_project(manager, g, name="b", project_id="pb")
    manager.start(a.id)
    manager.start(b.id)
    r = make_orchestration(manager, a, name="r")
    r1 = make_orchestration(manager, r, name="r1")
    return {"g": g.id, "a": a.id, "b": b.id, "r": r.id, "r1": r1.id}


# -- what a move does -----------------------------------------------------------------------
def test_a_run_moves_to_another_project_with_its_subtree(manager, two):
    before = manager.get(two["r"])
    moved = manager.move(two["r"], two["b"], actor="alice", reason="filed wrong")
    assert moved.parent_id == two["b"] and moved.version == before.version + 1
    assert moved.project_id == "pb" and moved.id == before.id
    phase = manager.get(two["r1"])
    assert phase.project_id == "pb" and phase.parent_id == two["r"] and phase.depth == 3
    assert [c.id for c in manager.get_children(two["b"])] == [two["r"]]
    assert manager.get_children(two["a"]) == []
    assert [i.id for i in manager.get_ancestors(two["r1"])] == [two["r"], two["b"], two["g"]]
    history = manager.history(two["r"])
    assert [e.event for e in history] == ["create", "move"]
    event = history[-1]
    assert (event.from_parent_id, event.to_parent_id) == (two["a"], two["b"])
    assert (event.actor, event.reason) == ("alice", "filed wrong")
    assert event.to_dict()["from_parent_id"] == two["a"]
    assert [e.event for e in manager.history(two["r1"])] == ["create"]
    assert check_invariants(manager.graph.driver) == []


def test_a_move_deeper_rewrites_depth_and_nothing_else_changes(manager, two):
    manager.move(two["b"], two["a"])  # b becomes a sub-project of a
    b = manager.get(two["b"])
    assert b.depth == 2 and b.project_id == "pb"
    assert check_invariants(manager.graph.driver) == []


def test_top_project_label_follows_the_move(manager, two, clean_graph):
    assert "TopProject" in labels(clean_graph, two["b"])
    manager.move(two["b"], two["a"])
    assert "TopProject" not in labels(clean_graph, two["b"])
    manager.move(two["b"], two["g"])
    assert "TopProject" in labels(clean_graph, two["b"])


def test_a_sub_project_cannot_become_a_second_top_project(manager, two, clean_graph):
    sub = make_project(manager, manager.get(two["a"]), name="sub", project_id="pa")
    with pytest.raises(DuplicateProject) as caught:
        manager.move(sub.id, two["g"])
    assert caught.value.details["existing_id"] == two["a"]
    assert caught.value.details["rule"] == "one-top-project"
    assert manager.get(sub.id).parent_id == two["a"]
    assert "TopProject" not in labels(clean_graph, sub.id)


def test_inherited_config_comes_from_the_new_ancestors(manager, two):
    manager.update(two["a"], config={"tags": ["from-a"]})
    manager.update(two["b"], config={"tags": ["from-b"]})
    assert manager.effective_config(two["r1"]).config["tags"] == ["from-a"]
    manager.move(two["r"], two["b"])
    after = manager.effective_config(two["r1"])
    assert after.config["tags"] == ["from-b"] and after.provenance["tags"] == two["b"]


def test_the_feed_shows_a_move_to_the_old_and_the_new_subtree(manager, two):
    head = manager.feed.head()
    manager.move(two["r"], two["b"])
    manager.start(two["r"])
    old = [e.event for e in manager.feed.read(head, subtree=two["a"])]
    new = [(e.event, e.instance_id) for e in manager.feed.read(head, subtree=two["b"])]
    assert old == ["move"]
    assert new == [("move", two["r"]), ("start", two["r"])]


def test_a_live_follower_of_the_old_subtree_stops_seeing_the_instance(manager, two):
    head = manager.feed.head()
    follower = manager.feed.follow(head, subtree=two["a"], heartbeat=0.2)
    manager.start(two["r"])
    manager.move(two["r"], two["b"], expected_parent_id=two["a"])
    manager.pause(two["r"])
    seen = []
    for event in follower:
        if event is None:
            break
        seen.append(event.event)
    follower.close()
    assert seen == ["start", "move"]


def test_apply_never_moves_an_instance_back(manager):
    """apply -f creates and changes, but never moves: a document that puts a moved
    instance where it was is a conflict, found before anything is written."""
    from hopper_graph import Conflict
    from hopper_graph.apply import apply_document
    from tests.integration.test_apply import document, graph_counts

    apply_document(manager, document())
    build = manager.get_by_scope_and_name("ORCHESTRATION", "website-build")
    billing = manager.get_by_scope_and_name("PROJECT", "billing")
    manager.move(build.id, billing.id)
    before = graph_counts(manager)
    with pytest.raises(Conflict):
        apply_document(manager, document())
    assert manager.get(build.id).parent_id == billing.id
    assert graph_counts(manager) == before


# -- the rules ------------------------------------------------------------------------------
def test_the_global_never_moves(manager, two):
    with pytest.raises(GlobalNotMovable) as caught:
        manager.move(two["g"], two["a"])
    assert caught.value.details == {"id": two["g"], "rule": "global-never-moves"}


@pytest.mark.parametrize("target", ["r", "r1"])
def test_no_move_under_itself_or_a_descendant(manager, two, target):
    with pytest.raises(MoveCycle) as caught:
        manager.move(two["r"], two[target])
    assert caught.value.details["id"] == two["r"]
    assert caught.value.details["rule"] == "no-cycle"


def test_expected_parent_must_be_the_current_one(manager, two):
    with pytest.raises(ParentMismatch) as caught:
        manager.move(two["r"], two["b"], expected_parent_id=two["b"])
    assert caught.value.details["parent_id"] == two["a"]
    assert caught.value.details["rule"] == "expected-parent"
    assert manager.get(two["r"]).parent_id == two["a"]


def test_expected_version_must_match(manager, two):
    with pytest.raises(ConcurrentModification):
        manager.move(two["r"], two["b"], expected_version=7)


def test_scope_order_holds_at_the_new_place(manager, two):
    with pytest.raises(ScopeRuleViolation) as caught:
        manager.move(two["b"], two["r"])  # a PROJECT under an ORCHESTRATION
    assert caught.value.details["rule"] == "scope-order"
    with pytest.raises(ScopeRuleViolation):
        manager.move(two["r"], two["g"])  # an ORCHESTRATION under the GLOBAL


def test_nothing_goes_under_an_archived_parent(manager, two):
    c = make_project(manager, manager.get(two["g"]), name="c")
    manager.archive(c.id)
    with pytest.raises(ParentArchived) as caught:
        manager.move(two["r"], c.id)
    assert caught.value.details["rule"] == "parent-not-archived"


def test_a_running_instance_goes_only_under_an_active_parent(manager, two):
    c = make_project(manager, manager.get(two["g"]), name="c")  # CREATED
    manager.start(two["r"])
    with pytest.raises(ParentNotActive) as caught:
        manager.move(two["r"], c.id)
    assert caught.value.details["rule"] == "running-under-active"
    idle = make_orchestration(manager, manager.get(two["a"]), name="idle")
    assert manager.move(idle.id, c.id).parent_id == c.id  # CREATED may go anywhere


def test_the_new_parents_child_limit_holds_archived_children_aside(manager, two):
    manager.update(two["b"], config={"limits": {"max_child_instances": 1}})
    first = make_orchestration(manager, manager.get(two["b"]), name="b1")
    with pytest.raises(LimitExceeded) as caught:
        manager.move(two["r"], two["b"])
    assert caught.value.details["limit"] == "limits.max_child_instances"
    assert caught.value.details["rule"] == "max-child-instances"
    manager.archive(first.id)
    assert manager.move(two["r"], two["b"]).parent_id == two["b"]


def test_the_depth_limit_holds_for_the_deepest_moved_instance(manager, two):
    manager.update(two["g"], config={"limits": {"max_depth": 3}})
    # r1 is at depth 3 now; under b's new sub-project it would be at 4
    sub = make_project(manager, manager.get(two["b"]), name="bsub", project_id="pb")
    with pytest.raises(LimitExceeded) as caught:
        manager.move(two["r"], sub.id)
    assert caught.value.details["limit"] == "limits.max_depth"
    assert manager.get(two["r1"]).depth == 3


def test_singleton_holds_at_the_new_place(manager, two):
    make_orchestration(manager, manager.get(two["b"]), name="only",
                       instance_type="SINGLETON")
    with pytest.raises(ScopeRuleViolation) as caught:
        manager.move(two["r"], two["b"])
    assert caught.value.details["rule"] == "singleton"


def test_unknown_instance_or_parent(manager, two):
    with pytest.raises(NotFound):
        manager.move("00000000-0000-4000-8000-000000000000", two["b"])
    with pytest.raises(ScopeRuleViolation):
        manager.move(two["r"], "00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValidationError):
        manager.move(two["r"], "not-a-uuid")
    with pytest.raises(ValidationError):
        manager.move(two["r"], two["a"])  # already there


# -- races -----------------------------------------------------------------------------------
def test_two_moves_that_would_close_a_cycle_never_both_apply(manager, two):
    for _ in range(5):
        x = make_orchestration(manager, manager.get(two["a"]))
        y = make_orchestration(manager, manager.get(two["a"]))
        pair = [(x.id, y.id), (y.id, x.id)]
        outcomes = race(lambda i, pair=pair: manager.move(*pair[i % 2]), n=2)
        assert sum(not isinstance(o, Exception) for o in outcomes) == 1
        assert all(isinstance(o, MoveCycle) for o in outcomes if isinstance(o, Exception))
    assert check_invariants(manager.graph.driver) == []


def test_three_moves_around_a_cycle_never_all_apply(manager, two):
    """x, y, z in three branches; x under y, y under z and z under x close a cycle only
    together: the chains each move locks overlap, so the last to go sees it."""
    a = manager.get(two["a"])
    xs = [make_orchestration(manager, make_orchestration(manager, a)) for _ in range(3)]
    ids = [x.id for x in xs]
    outcomes = race(lambda i: manager.move(ids[i], ids[(i + 1) % 3]), n=3)
    assert sum(not isinstance(o, Exception) for o in outcomes) <= 2
    assert check_invariants(manager.graph.driver) == []


def test_moves_racing_creates_never_exceed_the_child_limit(manager, two):
    manager.update(two["b"], config={"limits": {"max_child_instances": 4}})
    a = manager.get(two["a"])
    runs = [make_orchestration(manager, a).id for _ in range(4)]

    def attempt(i):
        if i % 2:
            return manager.move(runs[i // 2], two["b"])
        return make_orchestration(manager, manager.get(two["b"]))

    outcomes = race(attempt, n=8)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 4
    assert all(isinstance(o, LimitExceeded) for o in outcomes if isinstance(o, Exception))
    assert manager.children_page(two["b"]).total == 4
    assert check_invariants(manager.graph.driver) == []


def test_moves_that_close_a_cycle_through_other_instances_never_both_apply(manager, two):
    """A (with child Y) under project a, X (with child B) under project b: A under B and
    X under Y close a cycle only together, and share no instance they move or re-parent;
    each locks the other's chain (and at least one rewrites the depth of a subtree that
    holds the other's new parent), so the second sees the first."""
    a, b = manager.get(two["a"]), manager.get(two["b"])
    for _ in range(4):
        x_a = make_orchestration(manager, a)
        y = make_orchestration(manager, x_a)
        x_b = make_orchestration(manager, b)
        b_leaf = make_orchestration(manager, x_b)
        moves = [(x_a.id, b_leaf.id), (x_b.id, y.id)]
        outcomes = race(lambda i, moves=moves: manager.move(*moves[i]), n=2)
        assert sum(not isinstance(o, Exception) for o in outcomes) == 1
        assert all(isinstance(o, MoveCycle) for o in outcomes if isinstance(o, Exception))
    assert check_invariants(manager.graph.driver) == []


def test_creates_below_a_moving_subtree_get_its_new_depth_and_project(manager, two):
    """Runs created under a phase while its run moves to a deeper place in another
    project: each is created before the move (and rewritten by it) or after it (and
    planned on the moved parent), never with the old depth or project_id."""
    sub = make_project(manager, manager.get(two["b"]), name="b-sub", project_id="pb")
    targets = [sub.id, two["a"]]
    for round_ in range(4):
        def attempt(i, to=targets[round_ % 2]):
            if i == 0:
                return manager.move(two["r"], to)
            return make_orchestration(manager, manager.get(two["r1"]))

        outcomes = race(attempt, n=5)
        assert not [o for o in outcomes if isinstance(o, Exception)]
        assert check_invariants(manager.graph.driver) == []
        project = manager.get(two["r"]).project_id
        assert {c.project_id for c in manager.get_children(two["r1"])} == {project}
        for child in manager.get_children(two["r1"]):
            manager.delete(child.id)


@pytest.mark.parametrize("stopped", ["a", "b"])
def test_a_move_racing_a_stop_of_either_parent_leaves_nothing_running_under_it(
        manager, two, stopped):
    for _ in range(4):
        run = make_orchestration(manager, manager.get(two["a"]))
        manager.start(run.id)
        outcomes = race(lambda i, run=run: manager.move(run.id, two["b"]) if i == 0
                        else manager.stop(two[stopped]), n=2)
        assert all(isinstance(o, ParentNotActive) for o in outcomes
                   if isinstance(o, Exception))
        assert check_invariants(manager.graph.driver) == []
        manager.start(two[stopped])
        manager.delete(run.id, force=True)


# -- cost -------------------------------------------------------------------------------------
def _hits(driver, query, **params):
    from hopper_graph.queries import QUERIES

    _, summary, _ = driver.execute_query(f"PROFILE {getattr(QUERIES, query).text}", params)

    def total(plan):
        return int(plan.get("dbHits", 0)) + sum(total(c) for c in plan.get("children", []))
    return total(summary.profile)


def _grow(manager, parent_id, fanout, levels, prefix):
    """A subtree of ``fanout`` runs a level, ``levels`` deep, below ``parent_id``: the ids."""
    import uuid

    from hopper_graph import InstanceSpec

    specs, level = [], [parent_id]
    for depth in range(levels):
        below = [InstanceSpec(id=str(uuid.uuid4()), name=f"{prefix}-{p[:8]}-{depth}-{k}",
                              scope="ORCHESTRATION", parent_id=p)
                 for p in level for k in range(fanout)]
        specs += below
        level = [str(s.id) for s in below]
    return manager.bulk_create(specs)


def test_the_checks_read_the_two_chains_not_the_subtree_or_the_graph(manager, two,
                                                                     clean_graph):
    """get_move_facts costs the same whatever hangs below the instance or beside it."""
    before = _hits(clean_graph, "get_move_facts", id=two["r"], parent_id=two["b"])
    _grow(manager, two["r1"], 15, 2, "below")  # 240 instances under the one moved
    c = make_project(manager, manager.get(two["g"]), name="c")
    _grow(manager, c.id, 20, 2, "beside")  # 420 elsewhere
    after = _hits(clean_graph, "get_move_facts", id=two["r"], parent_id=two["b"])
    assert after <= before + 5  # a degree or two of the shared GLOBAL, not 660 instances


def test_the_subtree_is_rewritten_only_when_its_depth_or_project_changes(manager, two):
    below = _grow(manager, two["r1"], 5, 1, "below")
    versions = {i: manager.get(i).version for i in below}
    other = make_orchestration(manager, manager.get(two["a"]), name="other")
    manager.move(two["r1"], other.id)  # same project, same depth: nothing below changes
    assert {i: manager.get(i).version for i in versions} == versions
    manager.move(two["r"], two["b"])  # another project: r1 stays behind under other
    manager.move(two["r1"], two["r"])  # into project pb: its subtree follows
    after = {i: manager.get(i) for i in versions}
    assert all(a.version == versions[i] + 1 and a.project_id == "pb" for i, a in after.items())
