"""``hopper-graph events``: the change feed, a page of it or followed live (``--follow``,
as ``kubectl get -w`` follows a resource), one event per line either way."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC

import click

from hopper_graph.cli.base import Backend, cli, resolve_ref
from hopper_graph.cli.output import Output, one_line, output_option, to_json_line, to_yaml
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
@click.option("-l", "--selector", help="Only events of instances whose labels match this "
              "label selector now (e.g. 'team=infra,!legacy').")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help=f"At most N events (default {DEFAULT_LIMIT}); with --follow, stop after "
                   "N (default: never).")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing events as they commit, until Ctrl-C.")
@output_option()
@click.pass_obj
def events(backend: Backend, after: int | None, subtree: str | None, selector: str | None,
           limit: int | None, follow: bool, output: Output) -> None:
    """Show the change feed: every audit event, in commit order, one per line.

    Lines are `SEQ AT INSTANCE_ID EVENT FROM->TO ACTOR` under a header (-o wide adds the
    event id, cause and reason); -o json prints one JSON object per line (JSON Lines, for
    `| jq`), -o yaml one document per event, -o name the event ids. Without --follow, a
    full page ends with a `next page: --after SEQ` hint on stderr.
    """
    manager = backend.manager()
    root = resolve_ref(manager, subtree) if subtree is not None else None
    if not follow:
        page = manager.feed.read(after or 0, root, limit or DEFAULT_LIMIT, selector=selector)
        _print(page, output)
        if len(page) == (limit or DEFAULT_LIMIT):
            click.echo(f"next page: --after {page[-1].seq}", err=True)
        return
    try:
        start = manager.feed.head() if after is None else after
        with contextlib.closing(manager.feed.follow(start, root,
                                                    selector=selector)) as stream:
            _print(_first(stream, limit), output)
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


def _print(events: Iterable[InstanceEvent], output: Output) -> None:
    """Each event as soon as it comes (a followed feed has no end to wait for), in the
    format ``output`` asks for; the header before the first."""
    wide = output.format == "wide"
    header = output.format in ("table", "wide") and output.headers
    for event in events:
        if header:
            click.echo(_HEADER + (_WIDE_HEADER if wide else ""))
            header = False
        if output.format == "json":
            click.echo(to_json_line(event.to_dict()))
        elif output.format == "yaml":
            click.echo("---\n" + to_yaml(event.to_dict()), nl=False)
        elif output.format == "name":
            click.echo(event.id)
        else:
            click.echo(_line(event) + (_wide(event) if wide else ""))


_HEADER = f"{'SEQ':>6}  {'AT':<20}  {'INSTANCE_ID':<36}  {'EVENT':<7}  {'CHANGE':<17}  ACTOR"
_WIDE_HEADER = f"  {'ID':<36}  {'CAUSE':<36}  REASON"


def _line(event: InstanceEvent) -> str:
    """One event on one line; no field but the last (the actor) holds a space, so `awk`
    takes them apart."""
    at = event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    change = (f"{event.from_status.value if event.from_status else ''}->"
              f"{event.to_status.value if event.to_status else ''}")
    return (f"{event.seq:>6}  {at}  {event.instance_id}  {event.event:<7}  {change:<17}  "
            f"{one_line(event.actor or '-')}")


def _wide(event: InstanceEvent) -> str:
    return f"  {event.id}  {event.cause or '-':<36}  {one_line(event.reason or '-')}"
