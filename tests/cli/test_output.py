"""Output that scripts can rely on: every -o format parsed back, pipes counted with the real
grep and wc, nothing wrapped, the tree one line per node; and shell completion of SCOPE:NAME.

Click's runner gives the commands a stdout that is not a terminal, so it models a pipe; the
tests marked so run the real console script through a real shell pipe."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import uuid

import pytest
import yaml
from click.testing import CliRunner, Result

from hopper_graph import InstanceManager, InstanceSpec
from hopper_graph.cli import cli
from hopper_graph.cli.output import one_line, plain_table, to_yaml
from hopper_graph.queries import QUERIES
from tests.factories import make_global, make_project

LONG = "-a-name-longer-than-any-terminal-is-wide" * 3   # 120 characters
RUNS = 12


@pytest.fixture
def env(env, monkeypatch):
    """The shared fixture (tests/cli/conftest.py), with a narrow terminal and an actor
    of its own."""
    monkeypatch.setenv("HOPPER_ACTOR", "output-test")
    monkeypatch.setenv("COLUMNS", "40")   # narrower than every line printed below
    return env


@pytest.fixture
def forest(env, database):
    """GLOBAL -> PROJECT alpha -> RUNS runs with 120-character names, the first with a
    phase run below it: RUNS + 3 instances, 4 levels."""
    manager = InstanceManager(env, database)
    g = make_global(manager)
    p = make_project(manager, g, name="alpha")
    specs = [InstanceSpec(id=str(uuid.uuid4()), name=f"run-{i:02d}{LONG}",
                          scope="ORCHESTRATION", parent_id=p.id) for i in range(RUNS)]
    specs.append(InstanceSpec(id=str(uuid.uuid4()), name=f"phase{LONG}",
                              scope="ORCHESTRATION", parent_id=specs[0].id))
    manager.bulk_create(specs)
    manager.start(g.id)
    manager.start(p.id)
    return {"g": g.id, "p": p.id, "runs": [s.id for s in specs[:RUNS]], "phase": specs[-1].id}


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def lines(*args: str, code: int = 0) -> list[str]:
    return run(*args, code=code).stdout.splitlines()


def as_json(*args: str, code: int = 0):
    return json.loads(run(*args, "-o", "json", code=code).stdout)


def hopper_graph_pipe(args: str, tail: str) -> str:
    """``hopper-graph ARGS | TAIL`` in a real shell: stdout is a real pipe."""
    command = shlex.join([sys.executable, "-c",
                          "import sys; from hopper_graph.cli import main; main(sys.argv[1:])"])
    done = subprocess.run(f"{command} {args} | {tail}", shell=True, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_reader_that_stops_early_ends_the_command_with_status_0(env, database):
    """`hopper-graph events | head -1` under `set -o pipefail`: head closes the pipe while
    the listing (more than a pipe's 64 KiB buffer) is still being written. That is no
    failure of the command: it exits 0 and says nothing on stderr."""
    manager = InstanceManager(env, database)
    g = make_global(manager)
    project = make_project(manager, g, name="wide",
                           config={"limits": {"max_child_instances": 2000}})
    manager.bulk_create([InstanceSpec(name=f"run-{i}{LONG}", scope="ORCHESTRATION",
                                      parent_id=project.id) for i in range(1200)])
    command = shlex.join([sys.executable, "-c",
                          "import sys; from hopper_graph.cli import main; main(sys.argv[1:])",
                          "events", "-o", "wide", "--limit", "1200"])
    done = subprocess.run(["bash", "-o", "pipefail", "-c", f"{command} | head -1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "SEQ"
    assert "rror" not in done.stderr and "Traceback" not in done.stderr, done.stderr


# -- the pipes, for real ----------------------------------------------------------
def test_grep_and_wc_count_the_records_through_a_real_pipe(forest):
    runs = RUNS + 1
    assert hopper_graph_pipe("instance list --scope ORCHESTRATION",
                             "grep -c ORCHESTRATION") == str(runs)
    assert hopper_graph_pipe("instance list --no-headers", "wc -l") == str(runs + 2)
    assert hopper_graph_pipe("instance tree --no-headers", "wc -l") == str(runs + 2)
    assert hopper_graph_pipe(f"instance tree | grep -c {forest['phase']}", "cat") == "1"
    events = len(as_json("instance", "history", "PROJECT:alpha")["items"])
    assert hopper_graph_pipe("instance history PROJECT:alpha --no-headers", "wc -l") == \
        str(events)


# -- every format, parsed back ------------------------------------------------------------
LISTINGS = [
    ("instance", "list"),
    ("instance", "tree"),
    ("instance", "history", "PROJECT:alpha"),
    ("purge", "--dry-run", "--older-than", "0s"),
    ("check",),
]


@pytest.mark.parametrize("command", LISTINGS, ids=" ".join)
def test_yaml_parses_back_to_the_json_and_json_is_the_old_json(forest, command):
    document = as_json(*command)
    assert yaml.safe_load(run(*command, "-o", "yaml").stdout) == document
    assert json.loads(run(*command, "--json").stdout) == document
    assert document   # something to compare: every listing has a document


def test_table_rows_with_and_without_headers(forest):
    items = as_json("instance", "list")["items"]
    table = lines("instance", "list")
    assert table[0].split() == ["name", "scope", "status", "project", "id"]
    assert [row.split() for row in table[1:]] == [
        [i["name"], i["scope"], i["status"], i["project_id"] or "-", i["id"]] for i in items]
    assert [row.split() for row in lines("instance", "list", "--no-headers")] == [
        row.split() for row in table[1:]]
    wide = lines("instance", "list", "-o", "wide", "--no-headers")
    assert [row.split()[4:8] for row in wide] == [
        [i["id"], i["instance_type"], i["parent_id"] or "-", str(i["version"])]
        for i in items]


def test_name_prints_one_id_per_line(forest):
    assert lines("instance", "list", "-o", "name") == [
        i["id"] for i in as_json("instance", "list")["items"]]
    assert lines("instance", "get", "PROJECT:alpha", "-o", "name") == [forest["p"]]
    events = as_json("instance", "history", "PROJECT:alpha")["items"]
    assert lines("instance", "history", "PROJECT:alpha", "-o", "name") == [
        e["id"] for e in events]
    tree = lines("instance", "tree", "-o", "name")
    assert sorted(tree) == sorted(i["id"] for i in as_json("instance", "tree")["items"])


def test_instance_get_in_every_format(forest):
    document = as_json("instance", "get", "PROJECT:alpha")
    assert document["id"] == forest["p"]
    assert yaml.safe_load(run("instance", "get", "PROJECT:alpha", "-o", "yaml").stdout) == \
        document
    fields = dict(line.split(maxsplit=1) for line in lines("instance", "get", forest["p"]))
    assert fields["id"] == forest["p"] and fields["status"] == "ACTIVE"
    assert json.loads(fields["config"]) == document["config"]   # a map is one line of JSON
    assert run("instance", "get", forest["p"], "-o", "wide", code=2).exit_code == 2


# -- the tree, piped ----------------------------------------------------------------------
def test_the_tree_piped_is_one_line_per_node_each_parent_before_its_subtree(forest):
    flat = as_json("instance", "tree")["items"]
    table = lines("instance", "tree", "-o", "wide")
    header, rows = table[0].split(), [row.split() for row in table[1:]]
    assert header[:6] == ["level", "name", "scope", "status", "project", "id"]
    assert len(rows) == len(flat) == RUNS + 3
    level = {row[5]: int(row[0]) for row in rows}
    assert level == {i["id"]: i["level"] for i in flat}
    seen: list[str] = []
    for row in rows:   # depth first: the row above is the parent or one of its subtree
        node, parent = row[5], row[7]
        assert parent == "-" or parent in seen
        if seen and parent != "-":
            assert seen[-1] == parent or level[seen[-1]] >= level[node]
        seen.append(node)
    assert seen.index(forest["phase"]) == seen.index(forest["runs"][0]) + 1
    assert [row.split() for row in lines("instance", "tree", "--no-headers")] == [
        row.split()[:6] for row in table[1:]]


def test_a_terminal_still_gets_the_rich_tree(forest, monkeypatch):
    monkeypatch.setattr("hopper_graph.cli.output.is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "200")
    result = run("instance", "tree")
    assert "└── " in result.stdout and "15 instance(s) in 4 level(s)" in result.stdout
    table = run("instance", "list", "--scope", "PROJECT")
    assert "1-1 of 1" in table.stdout and table.stderr == ""
    monkeypatch.setenv("COLUMNS", "80")   # too narrow for three ids: printed whole, uncut
    events = as_json("instance", "history", "PROJECT:alpha")["items"]
    wide = run("instance", "history", "PROJECT:alpha", "-o", "wide").stdout
    assert wide.split()[:5] == ["seq", "at", "event", "from", "to"]
    assert all(e["id"] in wide and e["instance_id"] in wide for e in events)


# -- nothing wraps ------------------------------------------------------------------------
def test_nothing_wraps_whatever_the_name_or_the_width(forest, env, database):
    odd = "line one\nline two\ttabbed \x1b[31mred\x1b[0m " + LONG
    InstanceManager(env, database).create(name=odd, scope="ORCHESTRATION",
                                          parent_id=forest["p"])
    listed = lines("instance", "list", "--scope", "ORCHESTRATION", "--no-headers")
    assert len(listed) == RUNS + 2
    assert sum(one_line(odd) in row for row in listed) == 1
    assert "\x1b" not in run("instance", "list").stdout
    history = run("instance", "history", "PROJECT:alpha", "-o", "wide").stdout
    assert history.count(forest["p"]) == len(history.splitlines()) - 1   # whole ids
    assert len(lines("instance", "tree", "--no-headers")) == RUNS + 4


def test_notes_go_to_stderr_when_piped(forest):
    result = run("instance", "list", "--limit", "2", "--after", "")
    assert len(result.stdout.splitlines()) == 3
    assert "next page: --after" in result.stderr and "next" not in result.stdout
    assert run("check").stderr.strip() == "no violations" and run("check").stdout == ""


def test_json_beside_another_format_is_a_usage_error(env):
    result = run("instance", "list", "--json", "-o", "yaml", code=2)
    assert result.stderr.startswith("error: ") and "--json" in result.stderr
    assert run("instance", "list", "-o", "xml", code=2).stderr.startswith("error: ")


# -- the emitters alone -------------------------------------------------------------------
def test_plain_tables_align_and_never_leave_a_field_empty():
    assert plain_table(["a", "bb"], [["xxx", None], ["y", "z"]]) == [
        "a    bb", "xxx  -", "y    z"]
    assert plain_table(None, []) == []
    assert one_line("a\nb\x1b\u2028") == "a\\nb\\x1b\\u2028"


def test_yaml_quotes_what_it_would_misread():
    data = {"a": "yes", "b": "2025-01-06", "c": "1e3", "d": None, "e": [1, "null"]}
    assert yaml.safe_load(to_yaml(data)) == data


# -- shell completion ---------------------------------------------------------------------
def complete(words: str, shell: str = "bash") -> list[str]:
    """What the shell gets back for the last word of ``words`` (bash's protocol)."""
    parts = shlex.split(words)
    result = CliRunner().invoke(cli, [], prog_name="hopper-graph", env={
        "_HOPPER_GRAPH_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
        "COMP_CWORD": str(len(parts) - (0 if words.endswith(" ") else 1))})
    assert result.exit_code == 0 and result.stderr == "", result.output
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_completion_offers_scopes_then_names(forest):
    assert complete("hopper-graph instance get ") == [
        "GLOBAL:", "PROJECT:", "ORCHESTRATION:"]
    assert complete("hopper-graph instance get pro") == ["PROJECT:alpha"]   # one scope
    assert complete("hopper-graph instance start PROJECT:al") == ["PROJECT:alpha"]
    names = complete("hopper-graph instance tree ORCHESTRATION:run-0")
    assert names == sorted(names) and len(names) == 10
    assert complete("hopper-graph instance list --parent project:") == ["project:alpha"]
    assert complete("hopper-graph instance get NOSCOPE:x") == []


def test_completion_fails_silently_without_a_database(monkeypatch):
    monkeypatch.setenv("HOPPER_NEO4J_URI", "bolt://127.0.0.1:1")
    assert complete("hopper-graph instance get GLOBAL:") == []
    assert complete("hopper-graph instance get glo") == ["GLOBAL:"]


def test_the_completion_query_seeks_an_index(env, database):
    _, summary, _ = env.execute_query(
        f"EXPLAIN {QUERIES.complete_instance_names.text}",
        {"scope": "PROJECT", "prefix": "al", "limit": 50}, database_=database)
    operators = []
    stack = [summary.plan]
    while stack:
        plan = stack.pop()
        operators.append(plan["operatorType"])
        stack.extend(plan.get("children", []))
    assert any("IndexSeek" in op for op in operators), operators
    assert not any("Scan" in op for op in operators), operators


# -- purge and check ----------------------------------------------------------------------
def test_purge_and_check_in_every_format(forest, env, database):
    manager = InstanceManager(env, database)
    for run_id in forest["runs"][1:3]:
        manager.start(run_id)
        manager.stop(run_id)   # EPHEMERAL: archived on stop, purgeable at once with 0s
    dry = ("purge", "--dry-run", "--older-than", "0s")
    report = as_json(*dry)
    assert {i["id"] for i in report["purged"]} == set(forest["runs"][1:3])
    assert lines(*dry, "-o", "name") == [i["id"] for i in report["purged"]]
    assert yaml.safe_load(run(*dry, "-o", "yaml").stdout) == report
    rows = [row.split() for row in lines(*dry, "--no-headers", "-o", "wide")]
    assert [row[:4] for row in rows] == [["would-purge", i["id"], i["name"], i["scope"]]
                                         for i in report["purged"]]
    env.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.status = 'PAUSED'",
                      id=forest["runs"][3], database_=database)
    broken = as_json("check", code=1)
    involved = list(dict.fromkeys(i for v in broken["violations"] for i in v["instance_ids"]))
    assert forest["runs"][3] in involved
    assert lines("check", "-o", "name", code=1) == involved
    table = lines("check", "--no-headers", code=1)
    assert [row.split()[0] for row in table] == [v["kind"] for v in broken["violations"]]
    assert yaml.safe_load(run("check", "-o", "yaml", code=1).stdout) == broken


def test_a_cascade_cause_stays_whole_in_the_history(forest, env, database):
    manager = InstanceManager(env, database)
    child = forest["runs"][0]
    manager.start(child)
    manager.pause(forest["p"])   # pauses the run too, naming the project as the cause
    rows = [row.split() for row in lines("instance", "history", child, "--no-headers")]
    assert rows[-1][2:7] == ["pause", "ACTIVE", "PAUSED", "-", forest["p"]]
