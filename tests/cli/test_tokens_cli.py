"""``hopper-graph token create|list|revoke``: the secret printed once, and the token it
names working against the library as the server would check it."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from hopper_graph import InstanceManager
from hopper_graph.cli import cli
from hopper_graph.tokens import Role
from tests.factories import make_global, make_project


def run(*args: object, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_create_list_and_revoke_a_token(env, database):
    manager = InstanceManager(env, database)
    web = make_project(manager, make_global(manager), name="website")
    created = run("token", "create", "--subtree", "PROJECT:website", "--role", "operator",
                  "--expires", "30d", "--description", "web runner")
    secret = created.stdout.strip()
    assert secret.startswith("hgt_") and "\n" not in secret
    assert "shown only now" in created.stderr and "PROJECT:website" in created.stderr
    grant = manager.tokens.authenticate(secret)
    assert grant is not None and grant.role is Role.OPERATOR and grant.root_id == web.id

    listed = json.loads(run("token", "list", "--json").stdout)
    assert [(t["role"], t["root_id"], t["status"], t["description"]) for t in listed] == [
        ("operator", web.id, "active", "web runner")]
    assert listed[0]["expires_at"] is not None and secret not in run("token", "list").stdout

    run("token", "revoke", listed[0]["id"])
    assert manager.tokens.authenticate(secret) is None
    assert json.loads(run("token", "list", "--json").stdout)[0]["status"] == "revoked"


def test_bad_input_is_one_error_line(env, database):
    manager = InstanceManager(env, database)
    make_project(manager, make_global(manager), name="website")
    for args in (("--subtree", "PROJECT:nope", "--role", "reader"),
                 ("--subtree", "PROJECT:website", "--role", "owner"),
                 ("--subtree", "PROJECT:website", "--role", "reader", "--expires", "soon")):
        result = run("token", "create", *args, code=2 if "owner" in args or "soon" in args
                     else 1)
        assert "hgt_" not in result.output
    run("token", "revoke", "0123456789abcdef", code=1)
    assert json.loads(run("token", "list", "--json").stdout) == []
