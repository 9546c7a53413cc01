"""``hopper-graph lien add|list|remove`` against the real Neo4j."""

from __future__ import annotations

from tests.cli.test_cli import assert_one_error_line, run, run_json


def test_lien_add_list_remove_and_the_delete_it_refuses(env):
    run("instance", "create", "--name", "global", "--scope", "GLOBAL")
    run("instance", "create", "--name", "web", "--scope", "PROJECT", "--parent",
        "GLOBAL:global", "--project-id", "web")
    added = run_json("lien", "add", "PROJECT:web", "--reason", "serves production",
                     "--origin", "team-infra")
    assert (added["reason"], added["origin"], added["actor"]) == (
        "serves production", "team-infra", "cli-test")
    assert run("lien", "list", "PROJECT:web", "-o", "name").stdout.split() == [added["id"]]
    refused = run("instance", "delete", "GLOBAL:global", "--force", code=1)
    assert_one_error_line(refused, "cannot delete", "serves production", "team-infra")
    removed = run("lien", "remove", "PROJECT:web", added["id"])
    assert added["id"] in removed.stdout
    assert run_json("lien", "list", "PROJECT:web") == {"items": []}
    run("instance", "delete", "GLOBAL:global", "--force")


def test_removing_an_unknown_lien_names_it(env):
    run("instance", "create", "--name", "global", "--scope", "GLOBAL")
    result = run("lien", "remove", "GLOBAL:global", "no-such-lien", code=1)
    assert_one_error_line(result, "no lien no-such-lien")
