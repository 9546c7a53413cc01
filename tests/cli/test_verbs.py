"""The verbs ``instance update``, ``apply -f`` and ``reset`` through click's runner, against
the real Neo4j, as a script would run them (output piped: one line per record)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from hopper_graph.cli import cli
from tests.cli.test_cli import assert_one_error_line, run, run_json

TOUR = """\
instances:
  - name: global
    scope: GLOBAL
    status: ACTIVE
    children:
      - name: website
        scope: PROJECT
        project_id: website
        status: ACTIVE
        metadata: {owner: web-team}
        children:
          - {name: website-build, scope: ORCHESTRATION}
          - {name: website-deploy, scope: ORCHESTRATION, config: {execution: {max_retries: 1}}}
      - name: billing
        scope: PROJECT
        project_id: billing
"""


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin)


def count(driver, label: str) -> int:
    records, _, _ = driver.execute_query(f"MATCH (n:{label}) RETURN count(n) AS n")
    return records[0]["n"]


def counts(driver) -> tuple[int, int]:
    return count(driver, "HopperInstance"), count(driver, "InstanceEvent")


@pytest.fixture
def tour_file(tmp_path: Path) -> Path:
    path = tmp_path / "hierarchy.yaml"
    path.write_text(TOUR, encoding="utf-8")
    return path


# -- instance update -----------------------------------------------------------------------
@pytest.fixture
def cli_project(env):
    """A GLOBAL and the PROJECT alpha under it, created through the command line."""
    run("instance", "create", "--name", "global", "--scope", "GLOBAL")
    return run_json("instance", "create", "--name", "alpha", "--scope", "PROJECT",
                    "--parent", "GLOBAL:global", "--project-id", "alpha",
                    "--config", '{"limits": {"max_child_instances": 5}}',
                    "--metadata", '{"owner": "team-a", "tier": 1}')


def test_update_merges_config_and_metadata_and_renames(cli_project):
    updated = run_json("instance", "update", "PROJECT:alpha", "--name", "alpha-2",
                       "--config", '{"health": {"heartbeat_timeout_seconds": 30}}',
                       "--metadata", '{"tier": 2, "owner": null}')
    assert updated["name"] == "alpha-2" and updated["version"] == cli_project["version"] + 1
    assert updated["config"]["limits"]["max_child_instances"] == 5  # kept: merged
    assert updated["config"]["health"]["heartbeat_timeout_seconds"] == 30
    assert updated["metadata"] == {"tier": 2}  # null removed the key
    line = run("instance", "update", cli_project["id"], "--metadata", '{"tier": 3}').stdout
    assert line.startswith("updated alpha-2 PROJECT") and "version" in line
    history = run_json("instance", "history", cli_project["id"])["items"]
    assert [e["event"] for e in history][-2:] == ["update", "update"]
    assert history[-1]["actor"] == "cli-test"


def test_update_with_replace_drops_what_the_change_leaves_out(cli_project):
    updated = run_json("instance", "update", "PROJECT:alpha", "--replace",
                       "--metadata", '{"tier": 9}', "--config", "{}")
    assert updated["metadata"] == {"tier": 9}
    assert updated["config"]["limits"]["max_child_instances"] == 50  # the template's


@pytest.mark.parametrize("tag", ["{v}", '"{v}"', 'W/"{v}"'])
def test_update_if_match_takes_the_version_or_its_etag(cli_project, tag):
    version = cli_project["version"]
    updated = run_json("instance", "update", "PROJECT:alpha", "--metadata", '{"a": 1}',
                       "--if-match", tag.format(v=version))
    assert updated["version"] == version + 1


def test_update_if_match_a_stale_version_changes_nothing(cli_project):
    run("instance", "update", "PROJECT:alpha", "--metadata", '{"tier": 2}')  # moves it on
    before = run_json("instance", "get", "PROJECT:alpha")
    result = run("instance", "update", "PROJECT:alpha", "--name", "renamed",
                 "--metadata", '{"tier": 3}', "--if-match", str(cli_project["version"]), code=1)
    assert_one_error_line(result, f"version {before['version']}",
                          f"not {cli_project['version']}")
    assert run_json("instance", "get", cli_project["id"]) == before


@pytest.mark.parametrize(("args", "fragment"), [
    ((), "nothing to change"),
    (("--name", "x", "--if-match", "three"), "--if-match"),
    (("--config", '{"limits": {"max_child_instances": "many"}}'),
     "limits.max_child_instances"),
    (("--metadata", "[1]"), "--metadata must be an object"),
])
def test_update_refuses_bad_input_with_one_line(cli_project, args, fragment):
    result = run("instance", "update", "PROJECT:alpha", *args, code=2)
    assert_one_error_line(result, fragment)
    assert run_json("instance", "get", cli_project["id"])["version"] == cli_project["version"]


# -- apply -f --------------------------------------------------------------------------------
def test_apply_twice_creates_once_then_changes_nothing(env, tour_file):
    first = run("apply", "-f", tour_file).stdout.splitlines()
    assert len(first) == 6  # five instances and the summary, nothing wrapped
    assert [line.split()[:2] for line in first[:5]] == [
        ["created", "GLOBAL:global"], ["created", "PROJECT:website"],
        ["created", "ORCHESTRATION:website-build"],
        ["created", "ORCHESTRATION:website-deploy"], ["created", "PROJECT:billing"]]
    assert sum(line.startswith("created ") for line in first) == 5
    assert first[-1] == "5 instance(s): 5 created, 0 updated, 0 unchanged"
    assert invoke("apply", "-f", tour_file).stderr == ""  # no bar when stderr is no terminal
    website = run_json("instance", "get", "PROJECT:website")
    assert website["status"] == "ACTIVE" and website["metadata"] == {"owner": "web-team"}
    assert first[1].split()[2] == website["id"]
    before = counts(env)
    second = run("apply", "-f", tour_file).stdout.splitlines()
    assert [line.split()[0] for line in second[:5]] == ["unchanged"] * 5
    assert second[-1] == "nothing to change: 5 instance(s) unchanged"
    assert counts(env) == before  # no instance and no audit event more


def test_apply_reports_updates_and_reads_json_from_stdin(env, tour_file):
    run("apply", "-f", tour_file)
    document = yaml.safe_load(TOUR)
    document["instances"][0]["children"][1]["config"] = {"limits": {"max_child_instances": 7}}
    result = invoke("apply", "-f", "-", "--json", stdin=json.dumps(document))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 4)
    [updated] = [i for i in report["items"] if i["action"] == "updated"]
    assert (updated["scope"], updated["name"], updated["changed"]) == (
        "PROJECT", "billing", ["config"])
    assert updated["path"] == "instances[0].children[1]"
    assert run_json("instance", "get", "PROJECT:billing")["config"]["limits"][
        "max_child_instances"] == 7


def test_apply_of_a_json_file(env, tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps(yaml.safe_load(TOUR)), encoding="utf-8")
    assert run_json("apply", "-f", path)["created"] == 5


@pytest.mark.parametrize(("text", "fragments"), [
    (TOUR.replace("scope: PROJECT\n        project_id: billing",
                  "scope: TEAM\n        project_id: billing"),
     ["instances[0].children[1].scope"]),
    (TOUR.replace("max_retries: 1", "max_retries: lots"),
     ["instances[0].children[0].children[1].config.execution.max_retries"]),
    (TOUR.replace("status: ACTIVE\n        metadata", "colour: red\n        metadata"),
     ["instances[0].children[0].colour", "Unknown field"]),
    ("instances: [\n", ["not valid YAML"]),
    ("- just a list\n", ["must be a map"]),
])
def test_apply_of_a_bad_file_changes_nothing_and_names_the_place(env, tmp_path, text,
                                                                 fragments):
    run("instance", "create", "--name", "global", "--scope", "GLOBAL")
    before = counts(env)
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = run("apply", "-f", path, code=2)
    assert_one_error_line(result, *fragments)
    assert result.stdout == ""
    assert counts(env) == before


def test_apply_of_a_missing_file_is_one_line(env, tmp_path):
    result = run("apply", "-f", tmp_path / "nope.yaml", code=1)
    assert_one_error_line(result, "No such file", "nope.yaml")


def test_apply_conflict_is_one_line_naming_the_entry(env, tour_file):
    run("apply", "-f", tour_file)
    moved = TOUR.replace("project_id: billing", "project_id: billing-2")
    result = invoke("apply", "-f", "-", stdin=moved)
    assert result.exit_code == 1
    assert_one_error_line(result, "instances[0].children[1]", "PROJECT:billing", "project_id")


# -- reset -----------------------------------------------------------------------------------
@pytest.fixture
def filled(env, tour_file):
    run("apply", "-f", tour_file)
    run("instance", "stop", "PROJECT:website")
    assert counts(env)[0] == 5
    return env


def schema_state(driver) -> tuple[int, int]:
    records, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN count(*) AS n")
    return records[0]["n"], count(driver, "SchemaMigration")


@pytest.mark.parametrize("uri", ["bolt://db.example.invalid:7688", "bolt://127.0.0.1:1",
                                 "neo4j://localhost:1"])
def test_reset_refuses_what_is_not_a_local_server(filled, monkeypatch, uri):
    before = counts(filled)
    monkeypatch.setenv("HOPPER_NEO4J_URI", uri)
    result = run("reset", "--yes", code=1)
    assert_one_error_line(result, f"refusing to reset {uri}", "--force")
    assert counts(filled) == before


def test_reset_with_force_wipes_a_server_the_guard_does_not_know(filled, monkeypatch,
                                                                 tmp_path):
    """With HOPPER_NEO4J_HOME elsewhere, the test server is none of the project's local
    servers: refused without --force, wiped with it (in batches), schema kept."""
    monkeypatch.setenv("HOPPER_NEO4J_HOME", str(tmp_path))
    instances, events = counts(filled)
    schema = schema_state(filled)
    assert_one_error_line(run("reset", "--yes", code=1), "refusing", "--force")
    assert counts(filled) == (instances, events)
    report = run_json("reset", "--yes", "--force", "--batch-size", "3")
    assert (report["instances"], report["events"], report["counters"]) == (
        instances, events, count(filled, "HopperCounter") + report["counters"])
    assert counts(filled) == (0, 0) and count(filled, "HopperCounter") == 0
    assert schema_state(filled) == schema
    assert run_json("apply", "-f", filled_tour(tmp_path))["created"] == 5  # usable again


def filled_tour(tmp_path: Path) -> Path:
    path = tmp_path / "again.yaml"
    path.write_text(TOUR, encoding="utf-8")
    return path


def test_reset_asks_first_and_refuses_without_a_terminal(filled, monkeypatch, tmp_path):
    monkeypatch.setenv("HOPPER_NEO4J_HOME", str(tmp_path))
    before = counts(filled)
    result = run("reset", "--force", code=2)  # the runner's stdin is no terminal
    assert_one_error_line(result, "confirmation", "--yes")
    assert counts(filled) == before


def test_reset_of_the_projects_local_test_server_needs_no_force(filled, neo4j_source):
    if neo4j_source.kind != "local":
        pytest.skip("the tests do not run on one of the project's local servers")
    line = run("reset", "--yes").stdout.strip()
    assert line.startswith("deleted 5 instance(s), ") and line.endswith("the schema stays")
    assert counts(filled) == (0, 0)


# -- the documentation -----------------------------------------------------------------------
def test_the_documented_example_applies_as_documented(env):
    """docs/cli.md's apply document, run twice, prints what the doc says it prints (ids
    aside): the example cannot drift from the command."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    section = doc.split("## `apply -f FILE`", 1)[1]
    console_block = section.split("```console\n", 1)[1].split("```", 1)[0]
    document = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    runs = [out.splitlines() for out in console_block.split("$ ")[1:3]]
    for expected in runs:
        got = invoke("apply", "-f", "-", stdin=document).stdout.splitlines()
        assert [line.split()[:2] for line in got[:-1]] == \
            [line.split()[:2] for line in expected[1:-1]]
        assert got[-1] == expected[-1]


def run_with_terminal_stderr(args: list[str], env_vars: dict[str, str]) -> tuple[str, str]:
    """Run the real console script with stderr on a pseudo-terminal and stdout piped, as
    `hopper-graph apply -f x | grep ...` on a terminal does; its stdout and what the
    terminal showed."""
    main_fd, terminal_fd = pty.openpty()
    script = Path(sys.executable).with_name("hopper-graph")
    with subprocess.Popen([str(script), *args], stdout=subprocess.PIPE, stderr=terminal_fd,
                          env={**os.environ, **env_vars, "COLUMNS": "80"}) as process:
        os.close(terminal_fd)
        stdout, _ = process.communicate(timeout=120)
    shown = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the terminal's other end is closed: all was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    return stdout.decode(), shown.decode(errors="replace")


@pytest.mark.parametrize("quiet", [False, True])
def test_apply_draws_a_bar_on_a_terminal_only_and_keeps_stdout_clean(env, tour_file, quiet):
    variables = {k: v for k, v in os.environ.items() if k.startswith("HOPPER_")}
    stdout, shown = run_with_terminal_stderr(
        ["apply", "-f", str(tour_file), *(["--quiet"] if quiet else [])], variables)
    lines = stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("created ") for line in lines[:5])
    assert "\x1b" not in stdout  # nothing of the bar went to the pipe
    assert ("5/5" in shown) is not quiet


def test_apply_prints_ids_or_its_report_in_the_format_asked(env, tour_file):
    ids = run("apply", "-f", tour_file, "-o", "name").stdout.split()
    assert ids == [run_json("instance", "get", ref)["id"] for ref in (
        "GLOBAL:global", "PROJECT:website", "ORCHESTRATION:website-build",
        "ORCHESTRATION:website-deploy", "PROJECT:billing")]
    report = yaml.safe_load(run("apply", "-f", tour_file, "-o", "yaml").stdout)
    assert report == run_json("apply", "-f", tour_file)  # the same document either way
    assert (report["unchanged"], [i["id"] for i in report["items"]]) == (5, ids)
    assert_one_error_line(run("apply", "-f", tour_file, "-o", "wide", code=2), "wide")
