"""Shell completion of instance references (``SCOPE:NAME``), on top of click's own.

Click completes commands, options and choices by itself (docs/cli.md says how to turn it
on). :func:`complete_ref` adds instance references: the scope prefixes (``GLOBAL:``,
``PROJECT:``, ``ORCHESTRATION:``) without touching the database, then ``SCOPE:NAME`` for
the names in that scope that start with what was typed, from one query on the (name, scope) index
(``complete_instance_names``), at most ``LIMIT`` of them, with a connection that gives up
after ``TIMEOUT_SECONDS``. A shell waits for completion, so anything that goes wrong (no
database, a slow one, bad credentials) completes nothing rather than print an error into
the command line being typed.
"""

from __future__ import annotations

import dataclasses

import click
from click.shell_completion import CompletionItem

from hopper_graph.cli.base import configure_logging, resolve_settings
from hopper_graph.enums import HopperScope
from hopper_graph.graph import Graph, connect
from hopper_graph.queries import QUERIES

LIMIT = 50
TIMEOUT_SECONDS = 1.0


def complete_ref(ctx: click.Context, param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
    """Click's ``shell_complete`` for an argument or option that names an instance.

    Once what was typed fits one scope only (``pro``), its names come at once: offered
    alone, ``PROJECT:`` would be followed by the space shells add after a sole match."""
    typed, sep, prefix = incomplete.partition(":")
    scopes = [s.value for s in HopperScope if s.value.startswith(typed.upper())]
    if sep and typed.upper() not in HopperScope.__members__:
        return []
    if not sep and len(scopes) != 1:
        return [CompletionItem(f"{scope}:") for scope in scopes]
    label = typed if sep else scopes[0]
    found = names(label.upper(), prefix)
    if not sep and not found:
        return [CompletionItem(f"{label}:")]
    return [CompletionItem(f"{label}:{name}") for name in found]


def names(scope: str, prefix: str, limit: int = LIMIT) -> list[str]:
    """Up to ``limit`` names in ``scope`` starting with ``prefix``; none if the database
    cannot say so within ``TIMEOUT_SECONDS``."""
    configure_logging(verbose=False)  # the driver's warnings would land in the prompt
    try:
        settings = resolve_settings()
        settings = dataclasses.replace(settings,
                                       timeout=min(settings.timeout, TIMEOUT_SECONDS))
        with connect(settings) as driver:
            rows = Graph(driver, settings.database).read_rows(
                QUERIES.complete_instance_names.text, scope=scope, prefix=prefix, limit=limit)
    except Exception:  # completion must fail silently, whatever the cause
        return []
    return [str(row["name"]) for row in rows]
