"""Every named query runs as Neo4j Browser sends it. A `:params {limit: 25}` map reaches the
server with its numbers as FLOATS (25.0), and `LIMIT 25.0` is an error; `:param limit => 25`
lines send integers. So every query in cypher/ is run here, on a small seeded hierarchy,
once with integer and once with float numbers, and the two must answer alike. Writes run
in a transaction that is rolled back, so each query sees the same seeded graph.

A query added later is picked up by the loop over QUERIES; one whose parameter has no
sample here fails with the name of the parameter to add.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hopper_graph import cursors
from hopper_graph.queries import QUERIES, NamedQuery
from tests.conftest import wipe
from tests.factories import make_global, make_orchestration, make_project

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DOC = Path(__file__).parents[2] / "docs" / "instance-architecture.md"


def floats(value: Any) -> Any:
    """``value`` with every number a float, nested ones too, as Browser sends a map."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [floats(v) for v in value]
    if isinstance(value, dict):
        return {k: floats(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def seeded(driver, database) -> dict[str, Any]:
    """GLOBAL g > PROJECT web > (sub-project web-sub, run-1 > phase-1, run-2 archived), all
    with their events sequenced. Module-wide: every test below rolls its writes back."""
    from hopper_graph import InstanceManager

    wipe(driver, database)
    manager = InstanceManager(driver, database)
    g = make_global(manager, name="g")
    web = make_project(manager, g, name="web")
    sub = make_project(manager, web, name="web-sub", project_id="web")
    run1 = make_orchestration(manager, web, name="run-1")
    phase = make_orchestration(manager, run1, name="phase-1")
    run2 = make_orchestration(manager, web, name="run-2")
    for instance in (g, web, run1, run2):
        manager.start(instance.id, actor="seed")
    manager.stop(run2.id, actor="seed")  # EPHEMERAL: archived at once, a purge candidate
    history = manager.history(web.id)
    return {"g": g.id, "web": web.id, "sub": sub.id, "run1": run1.id, "phase": phase.id,
            "run2": run2.id, "web_version": manager.get(web.id).version,
            "g_version": manager.get(g.id).version,
            "web_event": history[0].id}


def new_props(seed: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "name": f"new-{uuid.uuid4()}", "scope": "ORCHESTRATION",
            "status": "CREATED", "instance_type": "EPHEMERAL", "parent_id": seed["web"],
            "project_id": "web", "depth": 2, "version": 1, "config": "{}",
            "config_set": "{}", "metadata": "{}", **extra}


def new_event(instance_id: str, event: str = "create", offset: int = 1) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "instance_id": instance_id, "event": event,
            "from_status": None, "to_status": "CREATED", "offset": offset}


def samples(seed: dict[str, Any]) -> dict[str, Any]:
    """A value for each parameter name, meaningful on the seeded graph; numbers are small
    integers chosen so paging shows (skip 1, limit 2 cut into every list)."""
    return {
        "id": seed["web"], "parent_id": seed["web"], "instance_id": seed["web"],
        "project_id": "web", "name": "web", "scope": "ORCHESTRATION", "status": "ACTIVE",
        "skip": 1, "limit": 2, "after": 1, "after_seq": 1, "after_depth": -1,
        "after_at": cursors.EARLIEST, "after_id": "", "with_total": True, "max_depth": 1,
        "fields": ["id", "name", "depth"], "now": NOW, "at": NOW, "started_at": NOW,
        "lock": True, "ids": [seed["run1"]], "parent_ids": [seed["web"]],
        "datetime_keys": ["created_at"], "value": 100, "version": seed["web_version"],
        "changes": {"metadata": '{"browser": true}'}, "event": new_event(seed["web"]),
        "events": [new_event(seed["web"], "update")], "props": new_props(seed),
        # a restore's marker (begin_restore)
        "file": "backup.json", "host": "browser", "pid": 1, "instance_count": 1,
        "event_count": 1,
        # labels and selectors
        "selector": [{"key": "team", "op": "notin", "pairs": ["team=none"]}],
        "label_pairs": ["team=infra"], "label_key": "team", "label_values": ["infra"],
        "key": "team",
    }


# Per query: what the defaults above do not fit.
LIST = {"scope": None, "status": None, "parent_id": None, "project_id": None, "selector": []}


def overrides(seed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    top = {"id": str(uuid.uuid4()), "name": f"imported-{uuid.uuid4()}", "scope": "PROJECT",
           "created_at": "2030-01-01T00:00:00Z"}
    return {
        "list_by_parent": {**LIST, "parent_id": seed["web"]},
        "list_by_project_and_scope": {**LIST, "project_id": "web", "scope": "ORCHESTRATION"},
        "list_by_project": {**LIST, "project_id": "web"},
        "list_by_scope_and_status": {**LIST, "scope": "ORCHESTRATION", "status": "ACTIVE"},
        "list_by_scope": {**LIST, "scope": "ORCHESTRATION"},
        "list_by_status": {**LIST, "status": "ACTIVE"},
        "list_all": LIST,
        "list_by_label": LIST, "browser_label_instances": {"value": "infra"},
        "import_labels": {"rows": [{"id": seed["run1"], "label_pairs": ["team=infra"]}]},
        "get_descendants_selected": {"id": seed["g"], "after_at": cursors.EARLIEST},
        "get_instance_by_scope_and_name": {"scope": "PROJECT"},
        "get_instances_by_scope_and_name": {"keys": [{"scope": "PROJECT", "name": "web"}]},
        "complete_instance_names": {"scope": "PROJECT", "prefix": "w"},
        "get_subtree_members": {"root": seed["web"], "ids": [seed["run1"], seed["g"]]},
        "get_ancestors": {"id": seed["phase"]},
        "browser_ancestors": {"id": seed["phase"]},
        "get_descendants": {"id": seed["g"], "after_at": cursors.EARLIEST},
        "get_subtree_to_depth": {"id": seed["g"]},
        "get_subtree_fields_to_depth": {"id": seed["g"]},
        "get_event_seqs": {"ids": [seed["web_event"]]},
        "lock_subtree": {"id": seed["run1"]}, "delete_subtree": {"id": seed["run1"]},
        "create_global_instance": {"props": {"id": str(uuid.uuid4()), "name": "g2",
                                             "scope": "GLOBAL", "version": 1}},
        "create_child_instance": {"parent_version": seed["web_version"],
                                  "global_version": seed["g_version"], "limit": 10,
                                  "singleton": False, "top_project": False},
        "bulk_create_instances": {"rows": [{
            "props": new_props(seed), "event": new_event("x"), "offset": 1,
            "parent_id": seed["web"], "top_project": False}]},
        "transition_instances": {"rows": [{
            "id": seed["sub"], "event": "start", "edges": {"CREATED": "ACTIVE"},
            "expected_version": [1], "needs_active_parent": True, "cascades": False,
            "event_ids": [str(uuid.uuid4()), str(uuid.uuid4())], "actor": "browser",
            "reason": "floats", "now": NOW}]},
        "update_instances": {"rows": [{
            "id": seed["web"], "version": seed["web_version"],
            "changes": {"metadata": '{"browser": true}'}, "now": NOW,
            "event": new_event(seed["web"], "update")}]},
        "apply_status_changes": {"id": seed["sub"], "rows": [{
            "id": seed["sub"], "status": "ACTIVE", "paused_by": None, "started": True,
            "stopped": False, "archived": False, "writes": 1,
            "events": [new_event(seed["sub"], "start")]}]},
        "find_purge_candidates": {"after_at": "0001-01-01T00:00:00Z", "after_depth": 2**62,
                                  "after_id": "", "limit": 10},
        "sequence_events": {"limit": 10},
        "import_instances": {"rows": [top]},
        # move (cypher/move.cypher): run-1 (with phase-1) from web to its sub-project
        "get_move_facts": {"id": seed["run1"], "parent_id": seed["sub"]},
        "lock_for_move": {"ids": [seed["web"], seed["sub"], seed["run1"]], "id": seed["run1"],
                          "parent_id": seed["sub"]},
        "lock_subtree_for_move": {"id": seed["run1"]},
        "move_instance": {"id": seed["run1"], "parent_id": seed["sub"], "depth_delta": 1,
                          "project_id": None, "top_project": False,
                          "event": new_event(seed["run1"], "move")},
        # scoped tokens (cypher/tokens.cypher)
        "create_token": {"root_id": seed["web"], "props": {
            "id": "0123456789abcdef", "hash": "0" * 64, "role": "reader"}},
        "instance_in_subtree": {"root": seed["web"], "id": seed["phase"]},
        "list_in_subtree": {**LIST, "root": seed["web"]},
        "import_parent_edges": {"rows": [{"parent_id": seed["web"], "id": seed["sub"]}]},
        "import_events": {"datetime_keys": ["at"], "events": [{"unlinked": False, "props": {
            "id": str(uuid.uuid4()), "instance_id": seed["web"], "seq": 999,
            "event": "create", "at": "2030-01-01T00:00:00Z"}}]},
        # liens (cypher/liens.cypher)
        "add_lien": {"lien": {"id": str(uuid.uuid4()), "reason": "browser", "origin": "docs"}},
        "remove_lien": {"lien_id": str(uuid.uuid4())},
        "import_liens": {"rows": [{"id": str(uuid.uuid4()), "instance_id": seed["web"],
                                   "reason": "browser", "created_at": "2030-01-01T00:00:00Z"}]},
    }


# A query that cannot run on the seeded graph as it stands gets it ready in its own
# (rolled-back) transaction first.
SETUP = {
    "create_global_instance": "MATCH (g:GlobalInstance) DETACH DELETE g",
}


def params_for(query: NamedQuery, seed: dict[str, Any]) -> dict[str, Any]:
    values = {**samples(seed), **overrides(seed).get(query.name, {})}
    missing = sorted(query.params - values.keys())
    assert not missing, (f"{query.name} ({query.source}) takes {missing}: add a sample "
                         f"value to samples() or overrides() in {Path(__file__).name}")
    return {name: values[name] for name in query.params}


def run_and_roll_back(driver, database, query: NamedQuery, params: dict[str, Any]) -> list:
    with driver.session(database=database) as session, session.begin_transaction() as tx:
        if query.name in SETUP:
            tx.run(SETUP[query.name]).consume()
        rows = [record.data() for record in tx.run(query.text, params)]
        tx.rollback()
    return rows


ALL_QUERIES = sorted(QUERIES, key=lambda q: q.name)


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_every_named_query_runs_with_float_numbers_as_with_integers(driver, database, seeded,
                                                                     query):
    params = params_for(query, seeded)
    as_integers = run_and_roll_back(driver, database, query, params)
    as_floats = run_and_roll_back(driver, database, query, floats(params))
    assert as_floats == as_integers


def names(driver, database, query: str, **params: Any) -> list[Any]:
    """The `name` column of a query run with float numbers, rolled back."""
    rows = run_and_roll_back(driver, database, getattr(QUERIES, query), floats(params))
    if len(rows) == 1 and isinstance(rows[0].get("name"), list):  # parallel lists
        return rows[0]["name"]
    return [row["name"] for row in rows]


def test_paging_with_float_numbers_pages(driver, database, seeded):
    """skip 1.0 and limit 2.0 skip one and keep two (the children of web, in creation
    order, are web-sub, run-1, run-2)."""
    paging = {"skip": 1, "limit": 2}
    assert names(driver, database, "get_children", parent_id=seeded["web"],
                 after_at=cursors.EARLIEST, after_id="", **paging) == ["run-1", "run-2"]
    assert names(driver, database, "list_by_parent", **{**LIST, "parent_id": seeded["web"]},
                 after_at=cursors.EARLIEST, after_id="", with_total=False,
                 **paging) == ["run-1", "run-2"]
    assert names(driver, database, "get_descendants", id=seeded["web"], after_depth=-1,
                 after_at=cursors.EARLIEST, after_id="", with_total=False,
                 **paging) == ["run-1", "run-2"]
    assert names(driver, database, "browser_children", parent_id=seeded["web"],
                 **paging) == ["run-1", "run-2"]
    assert sorted(names(driver, database, "get_subtree_to_depth", id=seeded["web"],
                        max_depth=1)) == ["run-1", "run-2", "web", "web-sub"]


def test_history_and_feed_with_float_numbers(driver, database, seeded):
    history = run_and_roll_back(driver, database, QUERIES.get_history, floats(
        {"instance_id": seeded["web"], "after_seq": 0, "skip": 1, "limit": 1}))
    assert history[0]["event"] == ["start"]
    feed = run_and_roll_back(driver, database, QUERIES.events_since,
                             {"after": 2.0, "limit": 3.0})
    assert feed[0]["seq"] == [3, 4, 5]
    trail = run_and_roll_back(driver, database, QUERIES.browser_history,
                              floats({"instance_id": seeded["web"], "skip": 0, "limit": 10}))
    assert [row["event"] for row in trail] == ["create", "start"]


def browser_rows(driver, database, name: str, **params: Any) -> list[dict[str, Any]]:
    return run_and_roll_back(driver, database, getattr(QUERIES, name), floats(params))


def path_ends(driver, database, name: str, **params: Any) -> list[str]:
    """The name of the last instance of each path a query returns, in its order."""
    query = getattr(QUERIES, name)
    with driver.session(database=database) as session:
        return [record["path"].end_node["name"]
                for record in session.run(query.text, floats(params))]


def test_the_browser_queries_answer_one_row_per_instance_or_event(driver, database, seeded):
    assert [r["name"] for r in browser_rows(driver, database, "browser_instances",
                                            limit=3)] == ["g", "web", "web-sub"]
    assert [r["name"] for r in browser_rows(driver, database, "browser_ancestors",
                                            id=seeded["phase"])] == ["run-1", "web", "g"]
    assert [r["name"] for r in browser_rows(driver, database, "browser_project_runs",
                                            project_id="web", skip=0, limit=10)] == [
        "run-2", "phase-1", "run-1"]
    trail = browser_rows(driver, database, "browser_audit_trail", after=0, limit=2)
    assert [(r["seq"], r["instance"], r["event"]) for r in trail] == [
        (1, "g", "create"), (2, "web", "create")]


def test_the_browser_tree_queries_answer_paths_for_the_graph_view(driver, database, seeded):
    assert path_ends(driver, database, "browser_tree", max_depth=1) == ["g", "web"]
    ends = path_ends(driver, database, "browser_subtree", id=seeded["web"], max_depth=1)
    assert ends[0] == "web" and sorted(ends[1:]) == ["run-1", "run-2", "web-sub"]


# -- the docs' own :params lines ----------------------------------------------------------
_PARAMS_LINE = re.compile(r"^:params (\{.*\})$", re.M)
_CYPHER = re.compile(r"```cypher\n(.*?)```", re.S)


def browser_map(text: str) -> dict[str, Any]:
    """A `:params {key: 'text', n: 1}` map as Browser reads it: its numbers as floats."""
    as_json = re.sub(r"'((?:[^'\\]|\\.)*)'", lambda m: json.dumps(m.group(1)), text)
    as_json = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', as_json)
    return floats(json.loads(as_json))


def documented_runs() -> list[tuple[str, dict[str, Any]]]:
    """Each cypher block of the doc with the `:params` line written before it."""
    text = DOC.read_text(encoding="utf-8")
    runs = []
    for block in _CYPHER.finditer(text):
        name = block.group(1).splitlines()[0].removeprefix("// name:").strip()
        before = _PARAMS_LINE.findall(text[:block.start()])
        params = next((q.params for q in QUERIES if q.name == name), None)
        runs.append((name, browser_map(before[-1]) if params and before else {}))
    return runs


@pytest.mark.parametrize(("name", "params"), documented_runs(), ids=lambda x: str(x)[:40])
def test_every_query_in_the_doc_runs_with_its_documented_params(driver, database, seeded,
                                                                name, params):
    query = next((q for q in QUERIES if q.name == name), None)
    assert query is not None, f"a cypher block of the doc names no query: {name!r}"
    assert set(params) == query.params, f"the doc's :params before {name} name other keys"
    run_and_roll_back(driver, database, query, params)


# -- the link serve prints ----------------------------------------------------------------
def test_serve_prints_a_browser_link_to_the_local_server(neo4j_source, monkeypatch):
    """With no HOPPER_NEO4J_URI, serve runs the local server and says, on stderr, where its
    Browser is, connected to it with no authentication. The server here is the tests' own
    (whatever its kind), standing in for the local one; gunicorn is not started."""
    from click.testing import CliRunner

    from hopper_graph.cli import cli
    from hopper_graph.cli import server as server_cli
    from hopper_graph.local_neo4j import LocalNeo4j

    settings = neo4j_source.settings
    for name, value in {"HOPPER_NEO4J_USER": settings.user,
                        "HOPPER_NEO4J_PASSWORD": settings.password,
                        "HOPPER_NEO4J_DATABASE": settings.database}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOPPER_NEO4J_URI", "")  # recorded, so the one serve sets goes too
    monkeypatch.delenv("HOPPER_NEO4J_URI")
    monkeypatch.setenv("HOPPER_NEO4J_HTTP_PORT", "17474")
    monkeypatch.setattr(LocalNeo4j, "start", lambda self: None)
    monkeypatch.setattr(LocalNeo4j, "uri", property(lambda self: settings.uri))
    monkeypatch.setattr(server_cli, "configure_logging", lambda: "text")
    monkeypatch.setattr(server_cli, "_gunicorn_app",
                        lambda factory, options: type("Stub", (), {"run": lambda self: None})())
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    link = (f"http://127.0.0.1:17474/browser/?dbms={settings.uri}"
            "&preselectAuthMethod=NO_AUTH")
    assert f"Neo4j Browser: {link}" in result.stderr.splitlines()
