"""``hopper-graph events``: the change feed, a page of it or followed live (``--follow``,
as ``kubectl get -w`` follows a resource), one event per line either way."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import UTC

import click

from hopper_graph import feed
from hopper_graph.cli.base import Backend, cli, resolve_ref
from hopper_graph.models import InstanceEvent
from hopper_graph.rules import MAX_SEQ

DEFAULT_LIMIT = 100


@cli.command("events")
@click.option("--after", type=click.IntRange(0, MAX_SEQ), metavar="SEQ",
              help="Start after this seq. Default: the first event; with --follow, the "
                   "newest (only what happens next).")
@click.option("--subtree", metavar="REF",
              help="Only events of this instance and its descendants, deleted ones too "
                   "(an id or SCOPE:NAME).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help=f"At most N events (default {DEFAULT_LIMIT}); with --follow, stop after "
                   "N (default: never).")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing events as they commit, until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line (JSON Lines), e.g. for `| jq`.")
@click.pass_obj
def events(backend: Backend, after: int | None, subtree: str | None, limit: int | None,
           follow: bool, as_json: bool) -> None:
    """Show the change feed: every audit event, in commit order, one per line.

    Text lines are `SEQ AT INSTANCE_ID EVENT FROM->TO ACTOR`. Without --follow, a full page
    ends with a `next page: --after SEQ` hint on stderr.
    """
    manager = backend.manager()
    root = resolve_ref(manager, subtree) if subtree is not None else None
    if not follow:
        page = feed.read(manager, after or 0, root, limit or DEFAULT_LIMIT)
        _print(page, as_json)
        if len(page) == (limit or DEFAULT_LIMIT):
            click.echo(f"next page: --after {page[-1].seq}", err=True)
        return
    try:
        start = feed.head(manager) if after is None else after
        with contextlib.closing(feed.follow(manager, start, root)) as stream:
            _print(_first(stream, limit), as_json)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a follow ends: no traceback, exit 0


def _first(stream: Iterable[InstanceEvent | None],
           limit: int | None) -> Iterable[InstanceEvent]:
    """The events of ``stream``, ``limit`` at most (None: all)."""
    count = 0
    for event in stream:
        if event is None:
            continue
        yield event
        count += 1
        if count == limit:
            return


def _print(events: Iterable[InstanceEvent], as_json: bool) -> None:
    for event in events:
        click.echo(json.dumps(event.to_dict(), ensure_ascii=False) if as_json
                   else _line(event))


def _line(event: InstanceEvent) -> str:
    """One event on one line; no field but the last (the actor) holds a space, so `awk`
    takes them apart."""
    at = event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    change = (f"{event.from_status.value if event.from_status else ''}->"
              f"{event.to_status.value if event.to_status else ''}")
    return (f"{event.seq:>6}  {at}  {event.instance_id}  {event.event:<7}  {change:<17}  "
            f"{event.actor or '-'}")
