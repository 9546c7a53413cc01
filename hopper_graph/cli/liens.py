"""``lien add|list|remove``: the liens that protect an instance (hopper_graph/liens.py)."""

from __future__ import annotations

import click

from hopper_graph.cli.base import Backend, cli, default_actor, json_option, print_json, resolve_ref
from hopper_graph.cli.completion import complete_ref
from hopper_graph.cli.output import Column, Output, console, output_option
from hopper_graph.liens import Lien

LIEN_COLUMNS: list[Column[Lien]] = [
    Column("id", lambda lien: lien.id, no_wrap=True),
    Column("reason", lambda lien: lien.reason),
    Column("origin", lambda lien: lien.origin),
    Column("actor", lambda lien: lien.actor, wide=True),
    Column("created_at", lambda lien: lien.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
           wide=True),
]


@cli.group()
def lien() -> None:
    """Protect instances from deletion: while an instance has a lien, deleting it or any
    ancestor (--force too), archiving it and purging it are refused.

    An instance is named by its id or by SCOPE:NAME.
    """


@lien.command("add")
@click.argument("ref", shell_complete=complete_ref)
@click.option("--reason", required=True, help="Why the instance must not go away.")
@click.option("--origin", help="Who holds the lien (a system, a team, a ticket).")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def lien_add(backend: Backend, ref: str, reason: str, origin: str | None,
             actor: str | None, as_json: bool) -> None:
    """Add a lien to an instance; prints its id (what `lien remove` takes)."""
    manager = backend.manager()
    added = manager.add_lien(resolve_ref(manager, ref), reason, origin, actor=actor)
    if as_json:
        print_json(added.to_dict())
    else:
        console().print(f"added lien {added.id} to {added.instance_id}")


@lien.command("list")
@click.argument("ref", shell_complete=complete_ref)
@output_option()
@click.pass_obj
def lien_list(backend: Backend, ref: str, output: Output) -> None:
    """List an instance's liens, oldest first (-o name: their ids)."""
    manager = backend.manager()
    found = manager.liens(resolve_ref(manager, ref))
    output.records(found, LIEN_COLUMNS, name=lambda lien: lien.id,
                   document=lambda: {"items": [lien.to_dict() for lien in found]})


@lien.command("remove")
@click.argument("ref", shell_complete=complete_ref)
@click.argument("lien_id")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def lien_remove(backend: Backend, ref: str, lien_id: str, actor: str | None,
                as_json: bool) -> None:
    """Remove one lien of an instance."""
    manager = backend.manager()
    removed = manager.remove_lien(resolve_ref(manager, ref), lien_id, actor=actor)
    if as_json:
        print_json(removed.to_dict())
    else:
        console().print(f"removed lien {removed.id} ({removed.reason!r}) from "
                        f"{removed.instance_id}")
