"""Names and project ids in Unicode NFC (issue 24, item 12): "café" composed and decomposed
are one name, one project; a name with no visible character is refused."""

from __future__ import annotations

import json
import unicodedata

import pytest
from click.testing import CliRunner

from hopper_graph import DuplicateName, DuplicateProject, ValidationError
from hopper_graph.apply import apply_document
from hopper_graph.checker import check_invariants, nfc_twins
from hopper_graph.cli import cli
from tests.cli.conftest import point_at
from tests.factories import make_global, make_project

COMPOSED = "caf\u00e9"
DECOMPOSED = "cafe\u0301"


def test_a_name_is_stored_in_nfc_and_its_decomposed_twin_is_taken(manager):
    g = make_global(manager)
    p = make_project(manager, g, name=DECOMPOSED, project_id="p1")
    assert p.name == COMPOSED and unicodedata.is_normalized("NFC", p.name)
    with pytest.raises(DuplicateName) as err:
        make_project(manager, g, name=COMPOSED, project_id="p2")
    assert err.value.existing_id == p.id
    assert manager.get_by_scope_and_name("PROJECT", DECOMPOSED).id == p.id
    other = make_project(manager, g, name="other", project_id="p3")
    with pytest.raises(DuplicateName):
        manager.update(other.id, name=DECOMPOSED)


def test_a_project_id_is_stored_in_nfc_and_its_twin_is_the_same_project(manager):
    g = make_global(manager)
    p = make_project(manager, g, name="a", project_id=DECOMPOSED)
    assert p.project_id == COMPOSED
    with pytest.raises(DuplicateProject):
        make_project(manager, g, name="b", project_id=COMPOSED)
    assert [i.id for i in manager.get_project_instances(DECOMPOSED)] == [p.id]


@pytest.mark.parametrize("blank", ["\u200b", "\u200b\u200b", " \u200b ", "\u2060", "\u0301"])
def test_a_name_or_project_id_with_no_visible_character_is_refused(manager, blank):
    g = make_global(manager)
    with pytest.raises(ValidationError) as err:
        make_project(manager, g, name=blank, project_id="p")
    assert "name" in err.value.errors
    with pytest.raises(ValidationError) as err:
        make_project(manager, g, name="fine", project_id=blank)
    assert "project_id" in err.value.errors
    with pytest.raises(ValidationError) as err:
        manager.update(g.id, name=blank)
    assert "name" in err.value.errors


def test_apply_matches_an_instance_whatever_form_its_name_is_written_in(manager):
    document = {"instances": [{"name": "global", "scope": "GLOBAL", "children": [
        {"name": DECOMPOSED, "scope": "PROJECT", "project_id": DECOMPOSED}]}]}
    apply_document(manager, document)
    again = {"instances": [{"name": "global", "scope": "GLOBAL", "children": [
        {"name": COMPOSED, "scope": "PROJECT", "project_id": COMPOSED}]}]}
    report = apply_document(manager, again)
    assert not report.changed and report.count("unchanged") == 2


def test_check_names_twins_written_before_names_were_normalised(manager, driver, database):
    g = make_global(manager)
    make_project(manager, g, name=COMPOSED, project_id=COMPOSED)
    write_decomposed_twin(driver, database)
    twins = [v for v in check_invariants(driver, database) if v.kind == "nfc-twins"]
    assert {v.message.split(" in Unicode")[0].split(" ", 1)[1] for v in twins} == {
        f"PROJECT instances are named {COMPOSED!r}",
        f"top-level PROJECTs have the project_id {COMPOSED!r}"}
    assert all("twin" in v.instance_ids for v in twins)


def write_decomposed_twin(driver, database) -> None:
    """A graph from before names were normalised: a PROJECT named, with the project_id,
    DECOMPOSED beside the GLOBAL's PROJECT named COMPOSED, written past the library."""
    driver.execute_query(
        "MATCH (g:GlobalInstance) CREATE (g)-[:PARENT_OF]->(p:HopperInstance:ProjectInstance"
        ":TopProject {id: 'twin', name: $name, scope: 'PROJECT', project_id: $name, "
        "parent_id: g.id, depth: 1, status: 'CREATED', instance_type: 'PERSISTENT', "
        "config: '{}', created_at: datetime()})", name=DECOMPOSED, database_=database)


def test_schema_apply_reports_twins_written_before_names_were_normalised(
        manager, driver, database, neo4j_source, monkeypatch):
    g = make_global(manager)
    make_project(manager, g, name=COMPOSED, project_id=COMPOSED)
    assert nfc_twins(driver, database) == []
    write_decomposed_twin(driver, database)
    assert [set(t.instance_ids) for t in nfc_twins(driver, database)] == [
        {"twin", manager.get_by_scope_and_name("PROJECT", COMPOSED).id}] * 2
    point_at(monkeypatch, neo4j_source.settings)
    result = CliRunner().invoke(cli, ["schema", "apply", "--json"])
    assert result.exit_code == 0, result.output
    reported = json.loads(result.stdout)["nfc_twins"]
    assert {t["kind"] for t in reported} == {"nfc-twins"} and len(reported) == 2
    text = CliRunner().invoke(cli, ["schema", "apply"]).stdout
    assert text.count("warning:") == 2 and "rename all but one" in text
