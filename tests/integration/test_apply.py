"""hopper_graph.apply against the real Neo4j: a document becomes a hierarchy once, a second
run changes nothing, a bad document or a conflict changes nothing and says where, and
racing applies end with one hierarchy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hopper_graph import InstanceManager
from hopper_graph.apply import CREATED, UNCHANGED, UPDATED, apply_document
from hopper_graph.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    ScopeRuleViolation,
    ValidationError,
)

DOCUMENT: dict[str, Any] = {"instances": [{
    "name": "global", "scope": "GLOBAL", "status": "ACTIVE",
    "children": [
        {"name": "website", "scope": "PROJECT", "project_id": "website", "status": "ACTIVE",
         "config": {"limits": {"max_child_instances": 20}},
         "metadata": {"owner": "web-team", "tier": 1},
         "children": [{"name": "website-build", "scope": "ORCHESTRATION"},
                      {"name": "website-deploy", "scope": "orchestration",
                       "metadata": {"env": "staging"}}]},
        {"name": "billing", "scope": "PROJECT", "project_id": "billing",
         "children": [{"name": "billing-ledger", "scope": "PROJECT",
                       "project_id": "billing-ledger"}]},
    ]}]}
NAMES = ["GLOBAL:global", "PROJECT:website", "ORCHESTRATION:website-build",
         "ORCHESTRATION:website-deploy", "PROJECT:billing", "PROJECT:billing-ledger"]


def document() -> dict[str, Any]:
    return copy.deepcopy(DOCUMENT)


def graph_counts(manager: InstanceManager) -> tuple[int, int, list[tuple[str, int]]]:
    """Instances, events, and every instance's (id, version): what a no-op leaves alone."""
    graph = manager.graph
    rows = graph.read_rows("MATCH (n:HopperInstance) WITH n ORDER BY n.id "
                           "RETURN count(n) AS n, collect([n.id, n.version]) AS versions")
    events = graph.read_rows("MATCH (e:InstanceEvent) RETURN count(e) AS events")
    return rows[0]["n"], events[0]["events"], [tuple(v) for v in rows[0]["versions"]]


def labels(report) -> list[str]:
    return [item.label for item in report.items]


# -- creating and re-applying --------------------------------------------------------------
def test_a_document_becomes_the_hierarchy_it_describes(manager):
    report = apply_document(manager, document(), actor="apply-test")
    assert labels(report) == NAMES
    assert [item.action for item in report.items] == [CREATED] * 6
    assert [item.path for item in report.items][:3] == [
        "instances[0]", "instances[0].children[0]", "instances[0].children[0].children[0]"]
    site = manager.get_by_scope_and_name("PROJECT", "website")
    build = manager.get_by_scope_and_name("ORCHESTRATION", "website-build")
    ledger = manager.get_by_scope_and_name("PROJECT", "billing-ledger")
    glob = manager.get_global_instance()
    assert glob is not None and site.parent_id == glob.id and build.parent_id == site.id
    assert ledger.parent_id == manager.get_by_scope_and_name("PROJECT", "billing").id
    assert build.project_id == "website" and build.status.value == "CREATED"
    assert (glob.status.value, site.status.value) == ("ACTIVE", "ACTIVE")
    assert site.config["limits"]["max_child_instances"] == 20
    assert site.metadata == {"owner": "web-team", "tier": 1}
    assert manager.history(site.id)[0].actor == "apply-test"


def test_a_second_apply_changes_nothing_and_says_so(manager):
    apply_document(manager, document())
    before = graph_counts(manager)
    report = apply_document(manager, document())
    assert [item.action for item in report.items] == [UNCHANGED] * 6
    assert not report.changed and report.to_dict()["unchanged"] == 6
    assert graph_counts(manager) == before  # no node, no event, no version bump


def test_what_differs_is_updated_and_only_that(manager):
    apply_document(manager, document())
    before = {item: manager.get_by_scope_and_name(*item.split(":")).version
              for item in NAMES}
    changed = document()
    site = changed["instances"][0]["children"][0]
    site["config"] = {"limits": {"max_child_instances": 30}}
    site["metadata"] = {"tier": 2}
    site["children"][0]["status"] = "ACTIVE"
    report = apply_document(manager, changed)
    actions = {item.label: (item.action, item.changed) for item in report.items}
    assert actions["PROJECT:website"] == (UPDATED, ("config", "metadata"))
    assert actions["ORCHESTRATION:website-build"] == (UPDATED, ("status",))
    assert {k for k, (a, _) in actions.items() if a == UNCHANGED} == set(NAMES) - {
        "PROJECT:website", "ORCHESTRATION:website-build"}
    stored = manager.get_by_scope_and_name("PROJECT", "website")
    assert stored.config["limits"]["max_child_instances"] == 30
    assert stored.metadata == {"owner": "web-team", "tier": 2}  # merged, not replaced
    assert stored.version == before["PROJECT:website"] + 1  # one write for both fields
    assert manager.get_by_scope_and_name("PROJECT", "billing").version == \
        before["PROJECT:billing"]


def test_replace_makes_the_documents_config_and_metadata_the_whole_of_them(manager):
    apply_document(manager, document())
    changed = document()
    changed["instances"][0]["children"][0]["metadata"] = {"tier": 2}
    changed["instances"][0]["children"][0]["config"] = {}
    report = apply_document(manager, changed, replace=True)
    assert report.items[1].changed == ("config", "metadata")
    stored = manager.get_by_scope_and_name("PROJECT", "website")
    assert stored.metadata == {"tier": 2} and stored.config_set == {}
    assert stored.config["limits"]["max_child_instances"] == 50  # the template's again
    assert not apply_document(manager, changed, replace=True).changed


def test_progress_is_called_once_per_instance_in_order(manager):
    seen: list[tuple[str, str, int, int]] = []
    apply_document(manager, document(),
                   progress=lambda item, done, total: seen.append(
                       (item.label, item.action, done, total)))
    assert seen == [(name, CREATED, i + 1, 6) for i, name in enumerate(NAMES)]


def test_a_stopped_run_that_archived_itself_is_as_the_document_says(manager):
    """Stopping an EPHEMERAL instance archives it: a document that says STOPPED is then
    satisfied, not an invalid ARCHIVED -> STOPPED move."""
    running = document()
    running["instances"][0]["children"][0]["children"][0]["status"] = "ACTIVE"
    apply_document(manager, running)
    stopped = document()
    stopped["instances"][0]["children"][0]["children"][0]["status"] = "STOPPED"
    report = apply_document(manager, stopped)
    assert report.items[2].changed == ("status",)
    assert report.items[2].instance.status.value == "ARCHIVED"
    assert not apply_document(manager, stopped).changed


def test_instances_the_document_does_not_name_are_left_alone(manager):
    apply_document(manager, document())
    site = manager.get_by_scope_and_name("PROJECT", "website")
    extra = manager.create(name="by-hand", scope="ORCHESTRATION", parent_id=site.id)
    smaller = document()
    del smaller["instances"][0]["children"][1]  # billing is no longer in the file
    assert not apply_document(manager, smaller).changed
    assert manager.get(extra.id).version == extra.version
    assert manager.get_by_scope_and_name("PROJECT", "billing") is not None


def test_a_flat_document_names_parents_in_any_order(manager):
    flat = {"instances": [
        {"name": "run-1", "scope": "ORCHESTRATION", "parent": "PROJECT:alpha"},
        {"name": "alpha", "scope": "PROJECT", "project_id": "alpha",
         "parent": "global:global"},
        {"name": "global", "scope": "GLOBAL"},
    ]}
    report = apply_document(manager, flat)
    assert labels(report) == ["GLOBAL:global", "PROJECT:alpha", "ORCHESTRATION:run-1"]
    assert report.items[2].path == "instances[0]"
    # a parent of the graph, by id, under a second document
    alpha = manager.get_by_scope_and_name("PROJECT", "alpha")
    more = {"instances": [{"name": "run-2", "scope": "ORCHESTRATION", "parent": alpha.id}]}
    assert apply_document(manager, more).items[0].instance.parent_id == alpha.id


# -- what changes nothing --------------------------------------------------------------------
@pytest.mark.parametrize(("edit", "path", "error"), [
    (lambda d: d["instances"][0]["children"][1]["children"][0].update(scope="TEAM"),
     "instances[0].children[1].children[0].scope", ValidationError),
    (lambda d: d["instances"][0]["children"][0].pop("name"),
     "instances[0].children[0].name", ValidationError),
    (lambda d: d["instances"][0]["children"][0].update(colour="red"),
     "instances[0].children[0].colour", ValidationError),
    (lambda d: d["instances"][0]["children"][0]["config"]["limits"].update(
        max_child_instances="many"),
     "instances[0].children[0].config.limits.max_child_instances", ValidationError),
    (lambda d: d["instances"][0]["children"][1].pop("project_id"),
     "instances[0].children[1].project_id", ScopeRuleViolation),
    (lambda d: d["instances"][0]["children"][0]["children"][1].update(scope="PROJECT",
                                                                       project_id="x"),
     None, None),  # a PROJECT under a PROJECT is fine: the control case
    (lambda d: d["instances"][0]["children"][1]["children"][0].update(scope="GLOBAL",
                                                                       project_id=None),
     "instances[0].children[1].children[0]", ScopeRuleViolation),
    (lambda d: d["instances"][0]["children"][0]["children"][0].update(project_id="other"),
     "instances[0].children[0].children[0].project_id", ScopeRuleViolation),
    (lambda d: d["instances"][0]["children"][1]["children"][0].update(
        name="website", project_id="billing-ledger"),
     "instances[0].children[1].children[0].name", ValidationError),
    (lambda d: d["instances"][0]["children"][0]["children"][0].update(parent="GLOBAL:global"),
     "instances[0].children[0].children[0].parent", ValidationError),
    (lambda d: d["instances"].append({"name": "x", "scope": "PROJECT", "project_id": "x"}),
     "instances[1].parent", ScopeRuleViolation),
])
def test_a_bad_document_changes_nothing_and_names_the_place(manager, edit, path, error):
    apply_document(manager, {"instances": [{"name": "global", "scope": "GLOBAL"}]})
    before = graph_counts(manager)
    bad = document()
    edit(bad)
    if error is None:
        assert len(apply_document(manager, bad).items) == 6
        return
    with pytest.raises(error) as caught:
        apply_document(manager, bad)
    assert any(key.startswith(path) for key in caught.value.errors), caught.value.errors
    assert path in caught.value.message
    assert graph_counts(manager) == before


def test_an_instance_elsewhere_is_a_conflict_found_before_any_write(manager):
    apply_document(manager, document())
    glob = manager.get_global_instance()
    assert glob is not None
    manager.create(name="stray", scope="PROJECT", parent_id=glob.id, project_id="stray")
    before = graph_counts(manager)
    moved = document()
    moved["instances"][0]["children"][0]["children"].append(  # a new one first, then ...
        {"name": "website-new", "scope": "ORCHESTRATION"})
    moved["instances"][0]["children"][1]["children"].append(  # ... one that is elsewhere
        {"name": "stray", "scope": "PROJECT", "project_id": "stray"})
    with pytest.raises(Conflict) as caught:
        apply_document(manager, moved)
    assert "instances[0].children[1].children[1]" in caught.value.message
    assert "instances[0].children[1].children[1].parent" in caught.value.errors
    assert graph_counts(manager) == before


def test_a_project_id_that_differs_is_a_conflict(manager):
    apply_document(manager, document())
    changed = document()
    changed["instances"][0]["children"][1]["project_id"] = "billing-2"
    with pytest.raises(Conflict, match="project_id"):
        apply_document(manager, changed)


def test_a_status_no_one_event_reaches_is_refused_before_any_write(manager):
    bad = document()
    bad["instances"][0]["children"][1]["status"] = "PAUSED"  # CREATED -> PAUSED: no event
    with pytest.raises(InvalidTransition) as caught:
        apply_document(manager, bad)
    assert "instances[0].children[1]" in caught.value.message
    assert graph_counts(manager)[0] == 0


def test_a_missing_parent_in_the_graph_is_not_found(manager):
    with pytest.raises(NotFound, match=r"instances\[0\]"):
        apply_document(manager, {"instances": [
            {"name": "p", "scope": "PROJECT", "project_id": "p", "parent": "GLOBAL:nope"}]})
