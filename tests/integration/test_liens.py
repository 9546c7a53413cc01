"""Liens (hopper_graph/liens.py): what they protect, their audit, and their races."""

from __future__ import annotations

from typing import Any

import pytest

from hopper_graph import InstanceProtected, NotFound, ValidationError
from hopper_graph.errors import InvalidTransition
from tests.factories import make_global, make_orchestration, make_project, make_run
from tests.threads import race


def test_a_lien_is_added_listed_and_removed_with_audit_events(manager, project):
    version = manager.get(project.id).version
    lien = manager.add_lien(project.id, "production traffic", "team-infra", actor="ops")
    assert (lien.reason, lien.origin, lien.actor) == ("production traffic", "team-infra", "ops")
    assert [x.id for x in manager.liens(project.id)] == [lien.id]
    removed = manager.remove_lien(project.id, lien.id, actor="ops")
    assert removed.id == lien.id and manager.liens(project.id) == []
    events = [e for e in manager.history(project.id) if "lien" in e.event]
    assert [e.event for e in events] == ["add_lien", "remove_lien"]
    assert lien.id in events[0].reason and "production traffic" in events[0].reason
    assert events[0].from_status == events[0].to_status == manager.get(project.id).status
    assert manager.get(project.id).version == version  # not a field of it


def test_lien_input_and_unknown_ids_are_refused(manager, project):
    with pytest.raises(ValidationError) as err:
        manager.add_lien(project.id, "   ")
    assert "reason" in err.value.errors
    with pytest.raises(NotFound):
        manager.add_lien("00000000-0000-0000-0000-000000000000", "x")
    with pytest.raises(NotFound) as err:
        manager.remove_lien(project.id, "no-such-lien")
    assert err.value.details["lien_id"] == "no-such-lien"


def test_a_lien_refuses_delete_of_the_instance_and_of_any_ancestor_even_forced(manager):
    g = make_global(manager)
    p = make_project(manager, g, name="prod")
    run = make_orchestration(manager, p, name="deploy")
    manager.add_lien(run.id, "deploy in flight", "ci")
    for target in (run.id, p.id, g.id):
        with pytest.raises(InstanceProtected) as err:
            manager.delete(target, force=True)
        text = err.value.message
        assert run.id in text and "deploy in flight" in text and "ci" in text
        assert err.value.details["protected"][0]["liens"][0]["origin"] == "ci"
    assert manager.get(run.id).status.value == "CREATED"  # force stopped nothing


def test_a_lien_refuses_archive_of_the_instance_and_by_cascade(manager):
    g = make_global(manager)
    p = make_project(manager, g, name="prod")
    run = make_orchestration(manager, p, name="leaf")
    manager.add_lien(run.id, "keep", "me")
    with pytest.raises(InstanceProtected):
        manager.archive(run.id)
    with pytest.raises(InstanceProtected) as err:
        manager.archive(p.id)  # its archive would archive the run
    assert run.id in err.value.message
    with pytest.raises(InstanceProtected):
        manager.update(run.id, status="ARCHIVED")
    assert manager.get(run.id).status.value == "CREATED"
    lien = manager.liens(run.id)[0]
    manager.remove_lien(run.id, lien.id)
    manager.archive(p.id)
    with pytest.raises(InvalidTransition):
        manager.archive(run.id)


def test_a_lien_keeps_a_run_from_purge_and_its_parent_with_it(manager, project):
    parent = make_run(manager, project, retention={"archived_ttl_seconds": 0})
    child = make_run(manager, parent, retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    manager.start(child.id)
    manager.stop(parent.id)  # EPHEMERAL: archived as they stop, liens or not
    manager.add_lien(child.id, "evidence for incident 42", "sre")
    report = manager.purge()
    assert report.purged == []
    why = {i.id: i.reason for i in report.kept}
    assert "evidence for incident 42" in why[child.id]
    assert child.id in why[parent.id]
    manager.remove_lien(child.id, manager.liens(child.id)[0].id)
    assert {i.id for i in manager.purge().purged} == {parent.id, child.id}


def test_a_lien_racing_a_forced_delete_of_an_ancestor_never_both_apply(manager):
    for _ in range(5):
        g = make_global(manager)
        p = make_project(manager, g)
        runs = [make_orchestration(manager, p) for _ in range(4)]
        manager.start(g.id)
        manager.start(p.id)

        def act(i: int, p: Any = p, runs: list[Any] = runs) -> object:
            if i == 0:
                return manager.delete(p.id, force=True)
            return manager.add_lien(runs[i % 4].id, f"lien {i}", "race")

        outcomes = race(act, 8)
        deleted = [o for o in outcomes if hasattr(o, "deleted")]
        added = [o for o in outcomes if hasattr(o, "reason") and hasattr(o, "origin")]
        refused = [o for o in outcomes if isinstance(o, InstanceProtected)]
        gone = [o for o in outcomes if isinstance(o, NotFound)]
        assert len(deleted) + len(refused) == 1
        if deleted:  # every lien came too late, none is left dangling
            assert added == [] and len(gone) == 7
        else:  # the delete saw the liens that committed before it
            assert added and all(manager.liens(r.id) is not None for r in runs)
            for run in runs:
                for lien in manager.liens(run.id):
                    manager.remove_lien(run.id, lien.id)
        manager.delete(g.id, force=True)
