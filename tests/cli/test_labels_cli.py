"""Labels and selectors on the command line: --label on create and update, -l/--selector
on list, tree and events."""

from __future__ import annotations

import json

from tests.cli.test_cli import assert_one_error_line, run, run_json


def test_labels_and_selectors_from_the_command_line(env):
    run_json("instance", "create", "--name", "global", "--scope", "GLOBAL")
    run_json("instance", "create", "--name", "alpha", "--scope", "PROJECT", "--parent",
             "GLOBAL:global", "--project-id", "alpha")
    a = run_json("instance", "create", "--name", "a", "--scope", "ORCHESTRATION", "--parent",
                 "PROJECT:alpha", "--label", "team=infra", "--label", "env=prod")
    run_json("instance", "create", "--name", "b", "--scope", "ORCHESTRATION", "--parent",
             "PROJECT:alpha", "--label", "team=web")
    assert a["labels"] == {"env": "prod", "team": "infra"}

    listed = run_json("instance", "list", "-l", "team in (infra,web),env")
    assert [i["name"] for i in listed["items"]] == ["a"]
    listed = run_json("instance", "list", "--selector", "team!=infra", "--scope",
                      "ORCHESTRATION")
    assert [i["name"] for i in listed["items"]] == ["b"]

    updated = run_json("instance", "update", "ORCHESTRATION:a", "--label", "env-",
                       "--label", "tier=batch")
    assert updated["labels"] == {"team": "infra", "tier": "batch"}

    tree = json.loads(run("instance", "tree", "PROJECT:alpha", "-l", "tier", "-o",
                          "json").stdout)
    assert [r["name"] for r in tree["items"]] == ["a"]

    lines = run("events", "-l", "team=web", "-o", "json").stdout.splitlines()
    assert {json.loads(line)["instance_id"] for line in lines} == {
        run_json("instance", "get", "ORCHESTRATION:b")["id"]}

    bad = run("instance", "list", "-l", "team in (a b)", code=1)
    assert_one_error_line(bad, "position 12")
