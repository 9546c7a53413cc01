"""The ``hopper-graph`` command line through click's runner, against the real Neo4j."""

from __future__ import annotations

import json
import socket
import uuid

import pytest
import yaml
from click.testing import CliRunner, Result

from hopper_graph import InstanceSpec, local_neo4j
from hopper_graph.cli import _gunicorn_app, cli, describe_error, is_loopback
from hopper_graph.errors import ScopeRuleViolation
from hopper_graph.local_neo4j import LocalNeo4j
from tests.conftest import wipe
from tests.factories import build_sample, make_global, make_project, make_run


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    if code in (0, 1, 3) and result.exception is not None:
        assert isinstance(result.exception, SystemExit), result.exception
    return result


def run_json(*args: str, code: int = 0):
    return json.loads(run(*args, "--json", code=code).stdout)


def assert_one_error_line(result: Result, *fragments: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def cli_chain(env):
    """GLOBAL -> PROJECT -> ORCHESTRATION, created through the command line."""
    g = run_json("instance", "create", "--name", "global", "--scope", "GLOBAL")
    p = run_json("instance", "create", "--name", "alpha", "--scope", "project", "--parent",
                 "GLOBAL:global", "--project-id", "alpha",
                 "--config", '{"limits": {"max_child_instances": 5}}',
                 "--metadata", '{"owner": "team-a"}')
    o = run_json("instance", "create", "--name", "alpha-run-1", "--scope", "ORCHESTRATION",
                 "--parent", p["id"])
    return {"g": g, "p": p, "o": o}


# -- instances ----------------------------------------------------------------------------
def test_create_start_and_draw_a_chain(cli_chain):
    g, p, o = cli_chain["g"], cli_chain["p"], cli_chain["o"]
    assert (g["scope"], p["scope"], o["scope"]) == ("GLOBAL", "PROJECT", "ORCHESTRATION")
    assert p["config"]["limits"]["max_child_instances"] == 5
    assert p["metadata"] == {"owner": "team-a"}
    assert o["project_id"] == "alpha" and o["instance_type"] == "EPHEMERAL"
    for ref in ("GLOBAL:global", p["id"], "orchestration:alpha-run-1"):
        assert "started" in run("instance", "start", ref, "--reason", "tour").stdout
    tree = run("instance", "tree").output   # the summary is on stderr when piped
    for name in ("global", "alpha", "alpha-run-1"):
        assert name in tree
    assert tree.count("ACTIVE") >= 3 and "3 instance(s) in 3 level(s)" in tree
    flat = run_json("instance", "tree", "GLOBAL:global")
    assert [(i["name"], i["level"], i["status"]) for i in flat["items"]] == [
        ("global", 0, "ACTIVE"), ("alpha", 1, "ACTIVE"), ("alpha-run-1", 2, "ACTIVE")]
    limited = run_json("instance", "tree", "--max-depth", "1")
    assert [i["name"] for i in limited["items"]] == ["global", "alpha"]


def test_get_list_history_health(cli_chain):
    p = cli_chain["p"]
    assert run_json("instance", "get", "PROJECT:alpha")["id"] == p["id"]
    assert "team-a" in run("instance", "get", p["id"]).stdout
    page = run_json("instance", "list", "--scope", "project")
    assert [i["name"] for i in page["items"]] == ["alpha"] and page["total"] == 1
    page = run_json("instance", "list", "--limit", "2", "--offset", "1")
    assert [i["name"] for i in page["items"]] == ["alpha", "alpha-run-1"]
    assert page["total"] == 3
    children = run_json("instance", "list", "--parent", "GLOBAL:global")
    assert [i["name"] for i in children["items"]] == ["alpha"]
    assert "1-3 of 3" in run("instance", "list").output
    run("instance", "start", "GLOBAL:global", "--actor", "ops", "--reason", "go")
    history = run_json("instance", "history", "GLOBAL:global")["items"]
    assert [(e["event"], e["to_status"]) for e in history] == [("create", "CREATED"),
                                                             ("start", "ACTIVE")]
    assert history[0]["actor"] == "cli-test" and history[1]["actor"] == "ops"
    assert "start" in run("instance", "history", "GLOBAL:global").stdout
    health = run_json("instance", "health", "GLOBAL:global", "--subtree")
    assert health["status"] in ("healthy", "degraded", "unhealthy", "unknown")
    assert {c["name"] for c in health["checks"]} >= {"parent_status", "heartbeat"}
    assert "parent_status" in run("instance", "health", p["id"]).stdout


def test_history_pages_by_cursor_to_the_end(cli_chain):
    g = cli_chain["g"]
    for event in ("start", "pause", "resume", "stop"):
        run("instance", event, "GLOBAL:global")
    everything = run_json("instance", "history", g["id"])["items"]
    assert len(everything) == 5
    seen, after = [], ""
    while after is not None:
        page = run_json("instance", "history", "GLOBAL:global", "--limit", "2",
                        "--after", after)
        assert len(page["items"]) <= 2
        seen += page["items"]
        after = page["next"]
    assert seen == everything
    result = run("instance", "history", "GLOBAL:global", "--limit", "2", "--after", "")
    assert "next page: --after " in result.stderr and len(result.stdout.splitlines()) == 3
    assert_one_error_line(run("instance", "history", "GLOBAL:global", "--after", "x",
                              code=2), "after")


def test_lifecycle_commands_and_cascades(cli_chain):
    g, p, o = cli_chain["g"], cli_chain["p"], cli_chain["o"]
    for instance in (g, p, o):
        run("instance", "start", instance["id"])
    paused = run_json("instance", "pause", p["id"], "--reason", "maintenance")
    assert (paused["previous_status"], paused["status"]) == ("ACTIVE", "PAUSED")
    assert [(c["id"], c["status"], c["cause"]) for c in paused["cascaded"]] == [
        (o["id"], "PAUSED", p["id"])]
    resumed = run_json("instance", "resume", p["id"])
    assert [c["id"] for c in resumed["cascaded"]] == [o["id"]]
    stopped = run_json("instance", "stop", "GLOBAL:global")
    assert stopped["status"] == "STOPPED"
    assert {(c["id"], c["status"]) for c in stopped["cascaded"]} >= {
        (p["id"], "STOPPED"), (o["id"], "ARCHIVED")}   # EPHEMERAL: archived on stop
    archived = run("instance", "archive", p["id"]).stdout
    assert "archived alpha" in archived and "STOPPED -> ARCHIVED" in archived
    assert run_json("instance", "get", p["id"])["archived_at"] is not None


def test_delete_needs_force_while_running_and_history_stays(cli_chain):
    p = cli_chain["p"]
    run("instance", "start", "GLOBAL:global")
    run("instance", "start", p["id"])
    refused = run("instance", "delete", p["id"], code=1)
    assert_one_error_line(refused, "ACTIVE or PAUSED")
    deleted = run_json("instance", "delete", p["id"], "--force", "--reason", "done")
    assert set(deleted["deleted"]) == {p["id"], cli_chain["o"]["id"]}
    assert [s["id"] for s in deleted["stopped"]] == [p["id"]]
    assert_one_error_line(run("instance", "get", p["id"], code=1), "no instance")
    events = run_json("instance", "history", p["id"])["items"]
    assert [e["event"] for e in events] == ["create", "start", "stop", "delete"]


# -- errors -------------------------------------------------------------------------------
def test_errors_are_one_line_with_an_exit_code(cli_chain, tmp_path):
    p = cli_chain["p"]
    line = assert_one_error_line(
        run("instance", "create", "--name", "lost", "--scope", "PROJECT", code=2),
        "needs a parent", "project_id")
    assert "scope rule" in line
    assert_one_error_line(run("instance", "get", str(uuid.uuid4()), code=1), "no instance")
    assert_one_error_line(run("instance", "get", "PROJECT:nope", code=1), "named 'nope'")
    assert_one_error_line(run("instance", "pause", p["id"], code=1),
                          "cannot pause", "CREATED", "start")
    assert_one_error_line(run("instance", "start", p["id"], code=1), "not ACTIVE")
    assert_one_error_line(
        run("instance", "create", "--name", "x", "--scope", "PROJECT", "--parent",
            "GLOBAL:global", "--project-id", "x", "--config", "{bad", code=2),
        "--config is not valid JSON")
    assert_one_error_line(
        run("instance", "create", "--name", "x", "--scope", "PROJECT", "--parent",
            "GLOBAL:global", "--project-id", "x", "--config", '{"nope": 1}', code=2),
        "nope")
    assert_one_error_line(
        run("instance", "create", "--name", "alpha", "--scope", "PROJECT", "--parent",
            "GLOBAL:global", "--project-id", "x", code=1), "already exists")
    assert_one_error_line(run("instance", "start", p["id"], "--expected-version", "9",
                              code=1), "version")
    assert_one_error_line(run("instance", "history", p["id"], "--offset", "-1", code=2))
    assert "No such command" in run("instance", "frobnicate", code=2).stderr


def test_config_and_metadata_from_files(env, tmp_path):
    run("instance", "create", "--name", "global", "--scope", "GLOBAL")
    (tmp_path / "config.yaml").write_text("limits:\n  max_child_instances: 9\ntags: [a, b]\n")
    (tmp_path / "meta.json").write_text('{"team": "b", "cost": {"centre": 42}}')
    created = run_json("instance", "create", "--name", "beta", "--scope", "PROJECT",
                       "--parent", "GLOBAL:global", "--project-id", "beta",
                       "--config", f"@{tmp_path / 'config.yaml'}",
                       "--metadata", f"@{tmp_path / 'meta.json'}")
    assert created["config"]["limits"]["max_child_instances"] == 9
    assert created["config"]["tags"] == ["a", "b"]
    assert created["metadata"] == {"team": "b", "cost": {"centre": 42}}
    assert_one_error_line(run("instance", "create", "--name", "x", "--scope", "PROJECT",
                              "--parent", "GLOBAL:global", "--project-id", "x",
                              "--metadata", "[1, 2]", code=2), "must be an object")
    assert_one_error_line(run("instance", "create", "--name", "x", "--scope", "PROJECT",
                              "--parent", "GLOBAL:global", "--project-id", "x",
                              "--metadata", f"@{tmp_path / 'missing.json'}", code=1),
                          "missing.json")


def test_names_are_printed_verbatim(env):
    run("instance", "create", "--name", "global", "--scope", "GLOBAL")
    name = "[bold red]not markup[/] '; MATCH (n) DETACH DELETE n //"
    run("instance", "create", "--name", name, "--scope", "PROJECT", "--parent",
        "GLOBAL:global", "--project-id", "odd")
    assert name in run("instance", "tree").stdout
    assert run_json("instance", "get", f"PROJECT:{name}")["name"] == name


def test_without_a_configured_or_running_neo4j(monkeypatch, tmp_path):
    monkeypatch.delenv("HOPPER_NEO4J_URI", raising=False)
    monkeypatch.setenv("HOPPER_NEO4J_HOME", str(tmp_path))
    monkeypatch.setenv("HOPPER_NEO4J_BOLT_PORT", str(free_port()))
    line = assert_one_error_line(run("instance", "list", code=1))
    assert "HOPPER_NEO4J_URI" in line and "hopper-graph neo4j start" in line


def test_an_unreachable_neo4j_is_one_line(monkeypatch):
    monkeypatch.setenv("HOPPER_NEO4J_URI", f"bolt://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HOPPER_NEO4J_TIMEOUT", "1")
    assert_one_error_line(run("check", code=1), "unavailable", "bolt://127.0.0.1:")
    assert_one_error_line(run("schema", "apply", code=1), "unavailable")


def test_describe_error_names_fields():
    code, message = describe_error(ScopeRuleViolation("bad", errors={"parent_id": ["gone"]}))
    assert (code, message) == (2, "bad (parent_id: gone)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a deep chain -------------------------------------------------------------------------
def test_a_two_thousand_deep_chain_draws_without_recursion(env, database, monkeypatch):
    from hopper_graph import InstanceManager

    manager = InstanceManager(env, database)
    g = make_global(manager, limits={"max_depth": 3000})
    specs = [InstanceSpec(id=str(uuid.uuid4()), name="deep-project", scope="PROJECT",
                          parent_id=g.id, project_id="deep")]
    for level in range(1999):
        specs.append(InstanceSpec(id=str(uuid.uuid4()), name=f"deep-{level}",
                                  scope="ORCHESTRATION", parent_id=specs[-1].id))
    manager.bulk_create(specs)
    piped = run("instance", "tree", "--no-headers").stdout.splitlines()
    assert len(piped) == 2001 and piped[-1].split()[:2] == ["2000", "deep-1998"]
    with monkeypatch.context() as terminal:
        terminal.setattr("hopper_graph.cli.output.is_terminal", lambda: True)
        result = run("instance", "tree")   # the rich tree, as on a terminal
    assert "global" in result.stdout and "deep-project" in result.stdout
    assert "2001 instance(s) in 2001 level(s)" in result.stdout
    assert "levels do not fit" in result.stderr
    flat = run_json("instance", "tree")
    assert len(flat["items"]) == 2001 and flat["items"][-1]["level"] == 2000
    assert run("check").output.strip() == "no violations"


# -- export, import, check ----------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_export_import_round_trip_through_files(env, database, tmp_path, suffix):
    build_sample(env, database)
    first, second = tmp_path / f"first{suffix}", tmp_path / f"second{suffix}"
    summary = run_json("export", first)
    assert summary["instances"] == 5 and summary["events"] > 5
    loader = json.loads if suffix == ".json" else yaml.safe_load
    assert loader(first.read_text())["format"] == "hopper-graph-export"
    assert_one_error_line(run("import", first, code=1), "empty database")
    wipe(env, database)
    assert "imported 5 instance(s)" in run("import", first).stdout
    assert "exported 5 instance(s)" in run("export", second).stdout
    a, b = loader(first.read_text()), loader(second.read_text())
    a.pop("exported_at")
    b.pop("exported_at")
    assert a == b
    assert run("check").output.strip() == "no violations"


def test_export_and_import_errors(env, tmp_path):
    assert_one_error_line(run("export", tmp_path / "backup.txt", code=2),
                          "unknown file type")
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: [unclosed\n")
    assert_one_error_line(run("import", bad, code=2), "not valid YAML")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "hopper-graph-export", "format_version": 7,
                                 "instances": [], "events": []}))
    assert_one_error_line(run("import", wrong, code=2), "format_version")
    assert run("import", tmp_path / "absent.json", code=2).exit_code == 2


def test_check_exit_codes(env, database):
    build_sample(env, database)
    assert run("check").output.strip() == "no violations"
    assert run_json("check") == {"violations": [], "count": 0}
    # A bug, or a hand edit: a run ACTIVE under a STOPPED parent, with no event saying so.
    env.execute_query(
        "MATCH (p:HopperInstance {name: 'alpha'})-[:PARENT_OF]->(r {name: 'run-2'}) "
        "SET p.status = 'STOPPED', r.status = 'ACTIVE'", database_=database)
    result = run("check", code=1)
    assert "running-under-parent" in result.stdout
    assert "status-event-mismatch" in result.stdout and "violation(s)" in result.output
    report = run_json("check", code=1)
    assert report["count"] == len(report["violations"]) == 4
    assert {v["kind"] for v in report["violations"]} == {
        "running-under-parent", "status-event-mismatch"}


# -- schema, the local server, serve ------------------------------------------------------
def test_schema_apply_is_idempotent(env):
    first = run_json("schema", "apply")
    assert first["version"] >= 1
    assert run_json("schema", "apply")["applied"] == []
    assert "up to date" in run("schema", "apply").stdout


def test_neo4j_status_of_a_server_that_is_not_running(monkeypatch, tmp_path):
    monkeypatch.setenv("HOPPER_NEO4J_HOME", str(tmp_path))
    monkeypatch.setenv("HOPPER_NEO4J_BOLT_PORT", str(free_port()))
    status = run_json("neo4j", "status", code=3)
    assert status["running"] is False and status["pid"] is None
    assert "stopped" in run("neo4j", "status", code=3).stdout
    assert "stopped" in run("neo4j", "stop").stdout   # idempotent


def test_neo4j_status_is_one_line_however_long_its_browser_link(monkeypatch, tmp_path):
    """`hopper-graph neo4j status | cat` printed the Browser URL wrapped at column 80."""
    monkeypatch.setenv("HOPPER_NEO4J_HOME", str(tmp_path))
    monkeypatch.setattr(LocalNeo4j, "pid", lambda self: 4242)
    monkeypatch.setattr(local_neo4j, "_port_open", lambda port: True)
    out = run("neo4j", "status").stdout
    assert out.count("\n") == 1 and len(out) > 120, out
    assert LocalNeo4j.from_env().browser_url in out


def test_serve_refuses_a_public_address_without_a_token(monkeypatch):
    monkeypatch.delenv("HOPPER_API_TOKEN", raising=False)
    monkeypatch.setenv("HOPPER_NEO4J_URI", "bolt://127.0.0.1:1")   # never reached
    for host in ("0.0.0.0", "::", "example.org"):
        line = assert_one_error_line(run("serve", "--host", host, code=2), "refusing")
        assert "HOPPER_API_TOKEN" in line


def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1", "127.5.5.5", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org"]))


def test_the_gunicorn_application_takes_its_options_and_the_factory():
    app = _gunicorn_app("tests.cli.test_cli:the_app", {
        "bind": "127.0.0.1:0", "workers": 3, "threads": 2, "worker_class": "gthread",
        "a_setting_from_the_future": True})
    assert app.cfg.bind == ["127.0.0.1:0"]
    assert (app.cfg.workers, app.cfg.threads) == (3, 2)
    assert app.load() is the_app
    assert _gunicorn_app("tests.cli.test_cli:make_the_app()", {}).load() is the_app


def the_app(environ, start_response):
    """A WSGI application for the test above: gunicorn names it by module and name."""


def make_the_app():
    return the_app


def test_version_and_help():
    assert "hopper-graph" in run("--version").stdout
    for group in ([], ["instance"], ["neo4j"], ["schema"]):
        assert "Usage" in run(*group, "--help").stdout


# -- purge --------------------------------------------------------------------------------
@pytest.fixture
def archived_runs(env):
    """Under an ACTIVE project: a run past its retention, one inside it, one pinned."""
    from hopper_graph import InstanceManager

    manager = InstanceManager(env, None)
    g = make_global(manager)
    p = make_project(manager, g, name="alpha")
    manager.start(g.id)
    manager.start(p.id)
    runs = {}
    for name, retention in (("gone", {"archived_ttl_seconds": 0}),
                            ("young", {"archived_ttl_seconds": 3600}),
                            ("pinned", {"archived_ttl_seconds": 0, "purge_archived": False})):
        run_ = make_run(manager, p, name, retention=retention)
        manager.start(run_.id)
        manager.stop(run_.id)
        runs[name] = run_.id
    return runs


def test_purge_dry_run_prints_a_line_per_instance_and_deletes_nothing(archived_runs):
    lines = run("purge", "--dry-run").output.strip().splitlines()
    assert lines[-1] == "would purge 1 instance(s), kept 2 (dry run: nothing was deleted)"
    assert len(lines) == 5 and lines[0].split() == ["result", "id", "name", "reason"]
    gone = next(line for line in lines if archived_runs["gone"] in line)
    assert gone.split()[:3] == ["would-purge", archived_runs["gone"], "gone"]
    pinned = next(line for line in lines if archived_runs["pinned"] in line)
    assert pinned.split()[:3] == ["kept", archived_runs["pinned"], "pinned"]
    assert "purge_archived" in pinned
    assert run_json("instance", "get", archived_runs["gone"])["status"] == "ARCHIVED"


def test_purge_deletes_and_reports_as_json(archived_runs):
    report = run_json("purge", "--actor", "ops")
    assert report["dry_run"] is False
    assert [i["id"] for i in report["purged"]] == [archived_runs["gone"]]
    assert {i["name"] for i in report["kept"]} == {"young", "pinned"}
    assert all(i["reason"] and i["archived_at"] for i in report["purged"] + report["kept"])
    assert_one_error_line(run("instance", "get", archived_runs["gone"], code=1),
                          archived_runs["gone"])
    history = run_json("instance", "history", archived_runs["gone"])["items"]
    assert (history[-1]["event"], history[-1]["actor"]) == ("delete", "ops")
    assert run("purge").output.strip().splitlines()[-1] == "purged 0 instance(s), kept 2"


def test_purge_says_when_it_stopped_at_its_limit_and_goes_on_after_it(archived_runs):
    lines = run("purge", "--dry-run", "--limit", "1").output.strip().splitlines()
    assert lines[1].split()[:3] == ["would-purge", archived_runs["gone"], "gone"]
    assert lines[-1].startswith("stopped at the limit of 1 with more left: go on with "
                                "--after ")
    cursor = lines[-1].rsplit(" ", 1)[1]
    report = run_json("purge", "--dry-run", "--limit", "1")
    assert (report["more"], report["cursor"]) == (True, cursor)
    rest = run_json("purge", "--dry-run", "--after", cursor)
    assert [i["name"] for i in rest["kept"]] == ["young", "pinned"]
    assert (rest["more"], rest["cursor"]) == (False, None)
    assert_one_error_line(run("purge", "--limit", "0", code=2), "--limit")


def test_purge_older_than_takes_a_duration(archived_runs):
    report = run_json("purge", "--dry-run", "--older-than", "0s")
    assert {"gone", "young"} <= {i["name"] for i in report["purged"]}
    report = run_json("purge", "--dry-run", "--older-than", "1d12h")
    assert report["purged"] == [] and {"gone", "young"} <= {i["name"] for i in report["kept"]}
    for bad in ("7", "7x", "d", "-1h", "1h 2m", "9999999999d", "999999999w", "36700d"):
        result = run("purge", "--older-than", bad, code=2)
        assert_one_error_line(result, "--older-than")
    assert run_json("instance", "get", archived_runs["gone"])["status"] == "ARCHIVED"


def test_query_show_prints_a_query_that_runs_as_printed(env, database):
    """What `query show` prints (fragments spliced in) is what a Browser user pastes: with
    its :param lines filled in, it runs and finds the instance."""
    from hopper_graph import InstanceManager
    g = make_global(InstanceManager(env, database), name="hopper")
    lines = run("query", "show", "get_instance").stdout.splitlines()
    assert lines[0].startswith("// get_instance (instances.cypher): ")
    assert lines[1] == ":param id => null"
    text = "\n".join(lines[2:])
    assert "{{" not in text and "heartbeat_at: toString(n.heartbeat_at)" in text
    records, _, _ = env.execute_query(text, {"id": g.id}, database_=database)
    assert records[0]["instance"]["name"] == "hopper"


def test_query_list_names_every_query_once():
    from hopper_graph.queries import QUERIES
    listed = json.loads(run("query", "list", "--json").stdout)
    assert sorted(q["name"] for q in listed) == sorted(q.name for q in QUERIES)
    assert all(q["doc"] and q["file"].endswith(".cypher") for q in listed)
    lines = run("query", "list").stdout.splitlines()
    assert len(lines) == len(listed) and all(line.count("\t") == 3 for line in lines)


def test_query_show_of_an_unknown_name_is_a_usage_error():
    result = run("query", "show", "no_such_query", code=2)
    assert "no named query 'no_such_query'" in result.stderr


def test_instance_list_pages_by_cursor(cli_chain):
    first = run_json("instance", "list", "--limit", "2", "--after", "")
    assert [i["name"] for i in first["items"]] == ["global", "alpha"]
    assert first["total"] is None and first["next"]
    rest = run_json("instance", "list", "--limit", "2", "--after", first["next"])
    assert [i["name"] for i in rest["items"]] == ["alpha-run-1"] and rest["next"] is None
    assert "next page: --after " in run("instance", "list", "--limit", "1", "--after", "").output
