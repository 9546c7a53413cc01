"""``token create|list|revoke``: scoped API tokens (hopper_graph/tokens.py).

``token create`` prints the secret once, on stdout alone (so ``$(hopper-graph token create
...)`` captures it); what it grants goes to stderr. The graph keeps only its hash: a lost
secret is revoked and replaced, never shown again.
"""

from __future__ import annotations

from datetime import timedelta

import click

from hopper_graph.cli.base import Backend, cli, default_actor, json_option, print_json, resolve_ref
from hopper_graph.cli.completion import complete_ref
from hopper_graph.cli.maintenance import Duration
from hopper_graph.cli.output import Column, Output, output_option
from hopper_graph.tokens import Role, TokenInfo

_ROLES = click.Choice([r.label for r in Role], case_sensitive=False)


@cli.group()
def token() -> None:
    """Scoped API tokens: a role (reader, operator, admin) on a subtree.

    The server enforces them when it runs with HOPPER_API_TOKEN set (see docs/api.md).
    """


@token.command("create")
@click.option("--subtree", required=True, shell_complete=complete_ref,
              help="The root of the subtree the token acts on (id or SCOPE:NAME).")
@click.option("--role", required=True, type=_ROLES,
              help="reader: GET; operator: also lifecycle, heartbeats, create, update; "
                   "admin: also delete.")
@click.option("--expires", type=Duration(),
              help="Expire after this long (30d, 12h, 2w); default: never.")
@click.option("--description", help="What the token is for (shown by token list).")
@click.option("--actor", default=default_actor, help="Who the token list names as creator.")
@json_option
@click.pass_obj
def token_create(backend: Backend, subtree: str, role: str, expires: timedelta | None,
                 description: str | None, actor: str | None, as_json: bool) -> None:
    """Create a token and print its secret, this once."""
    manager = backend.manager()
    new = manager.tokens.create(resolve_ref(manager, subtree), role, expires_in=expires,
                                description=description, actor=actor)
    if as_json:
        print_json({"secret": new.secret, **new.info.to_dict()})
        return
    click.echo(new.secret)
    info = new.info
    click.echo(f"token {info.id}: {info.role.label} on {_root(info)}, expires "
               f"{info.expires_at or 'never'}. The secret above is shown only now.", err=True)


@token.command("list")
@output_option()
@click.pass_obj
def token_list(backend: Backend, output: Output) -> None:
    """List the tokens (never their secrets): active, expired, revoked, orphaned."""
    tokens = backend.manager().tokens.list()
    output.records(tokens, TOKEN_COLUMNS, name=lambda t: t.id,
                   document=lambda: [t.to_dict() for t in tokens])


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@json_option
@click.pass_obj
def token_revoke(backend: Backend, token_id: str, as_json: bool) -> None:
    """Revoke a token: it authenticates nothing from now on."""
    info = backend.manager().tokens.revoke(token_id)
    if as_json:
        print_json(info.to_dict())
    else:
        click.echo(f"revoked token {info.id} ({info.role.label} on {_root(info)})")


def _root(info: TokenInfo) -> str:
    if info.root_name is None:
        return f"{info.root_id} (deleted)"
    return f"{info.root_scope}:{info.root_name}"


TOKEN_COLUMNS: list[Column[TokenInfo]] = [
    Column("id", lambda t: t.id, no_wrap=True),
    Column("role", lambda t: t.role.label),
    Column("subtree", _root),
    Column("status", lambda t: t.status),
    Column("expires_at", lambda t: t.expires_at),
    Column("root_id", lambda t: t.root_id, wide=True),
    Column("created_at", lambda t: t.created_at, wide=True),
    Column("created_by", lambda t: t.created_by, wide=True),
    Column("description", lambda t: t.description, wide=True),
]
