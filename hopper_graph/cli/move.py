"""``instance move REF --to REF [--from REF]``: move an instance, with its subtree."""

from __future__ import annotations

import click
from rich.text import Text

from hopper_graph.cli.base import (
    Backend,
    default_actor,
    instance_label,
    json_option,
    print_json,
    resolve_ref,
)
from hopper_graph.cli.completion import complete_ref
from hopper_graph.cli.instances import _if_match, instance
from hopper_graph.cli.output import console


@instance.command("move")
@click.argument("ref", shell_complete=complete_ref)
@click.option("--to", "to", required=True, shell_complete=complete_ref, metavar="REF",
              help="The new parent (an id or SCOPE:NAME).")
@click.option("--from", "from_", shell_complete=complete_ref, metavar="REF",
              help="Refuse (and move nothing) unless the instance hangs under this parent "
                   "now: guards a move decided on a stale read.")
@click.option("--reason", help="Why: kept in the audit trail.")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@click.option("--if-match", "if_match", metavar="VERSION", callback=_if_match,
              help='Refuse unless the instance is at this version: 3, or its ETag "3".')
@json_option
@click.pass_obj
def instance_move(backend: Backend, ref: str, to: str, from_: str | None,
                  reason: str | None, actor: str | None, if_match: int | None,
                  as_json: bool) -> None:
    """Move an instance, with everything below it, under a new parent.

    The create rules hold at the new place; never under itself or a descendant; the
    GLOBAL never moves; an ACTIVE or PAUSED instance goes only under an ACTIVE parent.
    """
    manager = backend.manager()
    instance_id = resolve_ref(manager, ref)
    parent_id = resolve_ref(manager, to)
    expected = resolve_ref(manager, from_) if from_ is not None else None
    moved = manager.move(instance_id, parent_id, expected_parent_id=expected, actor=actor,
                         reason=reason, expected_version=if_match)
    if as_json:
        print_json(moved.to_dict())
        return
    console().print(Text.assemble("moved ", instance_label(moved), f" under {parent_id}",
                                  (f" (version {moved.version})", "dim")))
