"""``hopper-graph instance move REF --to REF [--from REF]`` against the real Neo4j."""

from __future__ import annotations

from tests.cli import test_cli
from tests.cli.test_cli import assert_one_error_line, run, run_json

cli_chain = test_cli.cli_chain  # GLOBAL:global -> PROJECT:alpha -> ORCHESTRATION:alpha-run-1


def test_move_by_scope_and_name_with_the_current_parent_named(cli_chain):
    run_json("instance", "create", "--name", "beta", "--scope", "PROJECT", "--parent",
             "GLOBAL:global", "--project-id", "beta")
    moved = run_json("instance", "move", "ORCHESTRATION:alpha-run-1", "--to", "PROJECT:beta",
                     "--from", "PROJECT:alpha", "--reason", "misfiled", "--actor", "ops")
    assert moved["project_id"] == "beta" and moved["version"] == cli_chain["o"]["version"] + 1
    history = run_json("instance", "history", "ORCHESTRATION:alpha-run-1")
    last = history["items"][-1]
    assert last["event"] == "move" and last["to_parent_id"] == moved["parent_id"]
    text = run("instance", "move", "ORCHESTRATION:alpha-run-1", "--to", "PROJECT:alpha")
    assert "moved" in text.stdout and "alpha-run-1" in text.stdout


def test_a_stale_from_is_one_error_line_naming_the_current_parent(cli_chain):
    run_json("instance", "create", "--name", "beta", "--scope", "PROJECT", "--parent",
             "GLOBAL:global", "--project-id", "beta")
    result = run("instance", "move", "ORCHESTRATION:alpha-run-1", "--to", "PROJECT:beta",
                 "--from", "PROJECT:beta", code=1)
    assert_one_error_line(result, cli_chain["p"]["id"])


def test_moving_under_a_descendant_is_refused(cli_chain):
    result = run("instance", "move", "PROJECT:alpha", "--to", "ORCHESTRATION:alpha-run-1",
                 code=1)
    assert_one_error_line(result, "descendant")
