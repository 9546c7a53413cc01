"""``instance ...``: create, read and change instances one at a time."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import click
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from hopper_graph.cli.base import (
    Backend,
    cli,
    default_actor,
    health_dict,
    instance_label,
    json_option,
    parse_document,
    print_json,
    resolve_ref,
    status_text,
    transition_dict,
)
from hopper_graph.cli.completion import complete_ref
from hopper_graph.cli.output import Cell, Column, Output, console, one_line, output_option
from hopper_graph.enums import EVENT_SUMMARIES, HopperScope, InstanceStatus, InstanceType
from hopper_graph.errors import NotFound
from hopper_graph.lifecycle import EVENTS
from hopper_graph.models import FlatTreeRow, HopperInstance, InstanceEvent
from hopper_graph.rules import Expected

_PAST = {"start": "started", "stop": "stopped", "pause": "paused", "resume": "resumed",
         "archive": "archived"}
_GUIDE_WIDTH = 4  # columns rich's Tree indents each level by
_SHOWN_CHANGES = 20
DEFAULT_PAGE = 100
"""Rows a page by cursor holds unless --limit says otherwise."""


@cli.group()
def instance() -> None:
    """Create, read and change instances.

    An instance is named by its id or by SCOPE:NAME (e.g. GLOBAL:global).
    """


_SCOPES = click.Choice([s.value for s in HopperScope], case_sensitive=False)
_STATUSES = click.Choice([s.value for s in InstanceStatus], case_sensitive=False)
_TYPES = click.Choice([t.value for t in InstanceType], case_sensitive=False)


@instance.command("create")
@click.option("--name", required=True, help="Unique within the scope.")
@click.option("--scope", required=True, type=_SCOPES)
@click.option("--parent", shell_complete=complete_ref,
              help="The parent (id or SCOPE:NAME); none for GLOBAL.")
@click.option("--project-id", help="Required for a PROJECT; an ORCHESTRATION inherits it.")
@click.option("--type", "instance_type", type=_TYPES,
              help="Default: SINGLETON for GLOBAL, PERSISTENT for PROJECT, EPHEMERAL for "
                   "ORCHESTRATION.")
@click.option("--config", help="Config overrides: a JSON object, or @FILE (JSON or YAML).")
@click.option("--metadata", help="Free metadata: a JSON object, or @FILE (JSON or YAML).")
@click.option("--label", "label_args", multiple=True, metavar="KEY=VALUE",
              help="A label (repeat for more); Kubernetes' syntax.")
@click.option("--id", "instance_id", help="A UUID to use instead of a generated one.")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def instance_create(backend: Backend, name: str, scope: str, parent: str | None,
                    project_id: str | None, instance_type: str | None, config: str | None,
                    metadata: str | None, label_args: tuple[str, ...],
                    instance_id: str | None, actor: str | None, as_json: bool) -> None:
    """Create an instance."""
    labels = _labels(label_args, removals=False)
    config_doc = parse_document(config, "--config")
    metadata_doc = parse_document(metadata, "--metadata")
    manager = backend.manager()
    parent_id = resolve_ref(manager, parent) if parent else None
    created = manager.create(name=name, scope=scope, parent_id=parent_id,
                             project_id=project_id, instance_type=instance_type,
                             config=config_doc, metadata=metadata_doc, id=instance_id,
                             labels=labels or None, actor=actor)
    if as_json:
        print_json(created.to_dict())
    else:
        console().print(Text.assemble("created ", instance_label(created)))


@instance.command("get")
@click.argument("ref", shell_complete=complete_ref)
@output_option(("table", "json", "yaml", "name"), headers=False)
@click.pass_obj
def instance_get(backend: Backend, ref: str, output: Output) -> None:
    """Show one instance: every field (-o name: its id)."""
    manager = backend.manager()
    found = manager.get(resolve_ref(manager, ref))
    if output.format != "table":
        output.records([found], [], name=lambda i: i.id, document=found.to_dict)
        return
    data = found.to_dict()
    if not output.terminal:  # one line per field, nested maps as one-line JSON
        output.table(None, [[key, _field_text(value)] for key, value in data.items()])
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in data.items():
        if key == "status":
            grid.add_row(key, status_text(found.status))
        elif isinstance(value, dict):
            grid.add_row(key, Text(json.dumps(value, indent=2, ensure_ascii=False)))
        else:
            grid.add_row(key, Text("-" if value is None else one_line(str(value))))
    console().print(grid)


def _labels(args: tuple[str, ...], *, removals: bool) -> dict[str, str | None]:
    """``--label`` options as a map: KEY=VALUE sets, KEY- (with ``removals``) removes."""
    labels: dict[str, str | None] = {}
    for arg in args:
        if removals and "=" not in arg and arg.endswith("-"):
            labels[arg[:-1]] = None
            continue
        key, equals, value = arg.partition("=")
        if not equals:
            raise click.BadParameter(f"{arg!r} is not KEY=VALUE"
                                     + (" or KEY-" if removals else ""), param_hint="--label")
        labels[key] = value
    return labels


def _field_text(value: Any) -> str | None:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return None if value is None else str(value)


def _utc(at: datetime | None) -> str | None:
    """A time as one field: 2025-01-06T09:00:01Z."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


INSTANCE_COLUMNS: list[Column[HopperInstance]] = [
    Column("name", lambda i: i.name),
    Column("scope", lambda i: i.scope.value),
    Column("status", lambda i: status_text(i.status)),
    Column("project", lambda i: i.project_id),
    Column("id", lambda i: i.id, no_wrap=True),
    Column("type", lambda i: i.instance_type.value, wide=True),
    Column("parent_id", lambda i: i.parent_id, wide=True, no_wrap=True),
    Column("version", lambda i: str(i.version), wide=True, justify="right"),
    Column("created_at", lambda i: _utc(i.created_at), wide=True),
]
"""The columns of instance listings; -o wide adds type, parent_id, version, created_at."""


@instance.command("list")
@click.option("--scope", type=_SCOPES)
@click.option("--status", type=_STATUSES)
@click.option("--parent", shell_complete=complete_ref,
              help="Only the children of this instance (id or SCOPE:NAME).")
@click.option("--project-id")
@click.option("-l", "--selector", help="Only instances whose labels match this label "
              "selector, e.g. 'team=infra,tier!=batch,env in (prod,staging),!legacy'.")
@click.option("--limit", default=DEFAULT_PAGE, show_default=True, type=click.IntRange(min=1))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--after", metavar="CURSOR", help="Page by cursor: the `next` a page printed "
              "('' for the first page); each page then costs its own rows, and no total.")
@output_option()
@click.pass_obj
def instance_list(backend: Backend, scope: str | None, status: str | None,
                  parent: str | None, project_id: str | None, selector: str | None,
                  limit: int, offset: int, after: str | None, output: Output) -> None:
    """List instances in creation order, filtered and a page at a time.

    -o name prints their ids, one per line.
    """
    manager = backend.manager()
    parent_id = resolve_ref(manager, parent) if parent else None
    page = manager.list(scope=scope, status=status, parent_id=parent_id,
                        project_id=project_id, offset=offset, limit=limit, after=after,
                        selector=selector)
    output.records(page.items, INSTANCE_COLUMNS, name=lambda i: i.id, document=lambda: {
        "items": [i.to_dict() for i in page.items], "total": page.total,
        "offset": page.offset, "limit": page.limit, "next": page.next})
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    output.note(f"{shown} of {page.total}" if page.total is not None else
                f"{len(page.items)} shown")
    if page.next is not None:
        output.note(f"next page: --after {page.next}")


def _of_node(column: Column[HopperInstance]) -> Column[FlatTreeRow]:
    """An instance column, read from a tree row's instance."""
    def value(row: FlatTreeRow) -> Cell | None:
        return column.value(row.instance)
    return Column(column.header, value, column.wide, column.no_wrap, column.justify)


TREE_COLUMNS: list[Column[FlatTreeRow]] = [
    Column("level", lambda r: str(r.depth), justify="right"),
    *map(_of_node, INSTANCE_COLUMNS),
]
"""The tree as a table: each node's level below the root, then the instance columns."""


@instance.command("tree")
@click.argument("ref", required=False, shell_complete=complete_ref)
@click.option("--max-depth", type=click.IntRange(min=0),
              help="Levels below the root to show (default: all).")
@click.option("-l", "--selector", help="Only the instances whose labels match this label "
              "selector (shown as a table, each with its level).")
@output_option()
@click.pass_obj
def instance_tree(backend: Backend, ref: str | None, max_depth: int | None,
                  selector: str | None, output: Output) -> None:
    """Draw the hierarchy below an instance (default: the GLOBAL one).

    On a terminal, a tree. Piped, or with -o wide, a table of one line per node, each
    parent followed by its subtree, with each node's level below the root. With -o
    json/yaml, the flat form: every node with its parent_id and its level, parents first
    (deep trees never nest). -o name prints the ids in the table's order.
    """
    manager = backend.manager()
    root_id = resolve_ref(manager, ref) if ref else _global_id(backend)
    rows = cast("list[FlatTreeRow]", manager.get_flat_tree(root_id, max_depth,
                                                           selector=selector))
    if not rows:
        output.note("no instance matches")
        return
    if output.rich and output.format == "table" and not selector:
        _draw_tree(rows, root_id)
    else:
        output.records(depth_first(rows), TREE_COLUMNS, name=lambda r: r.instance.id,
                       document=lambda: {
                           "root_id": root_id, "max_depth": max_depth,
                           "items": [{**r.instance.to_dict(), "level": r.depth}
                                     for r in rows]})
    counts = Counter(row.instance.status for row in rows)
    summary = ", ".join(f"{counts[s]} {s.value}" for s in InstanceStatus if counts[s])
    levels = max(row.depth for row in rows) + 1
    output.note(f"{len(rows)} instance(s) in {levels} level(s): {summary}")


def _global_id(backend: Backend) -> str:
    root = backend.manager().get_global_instance()
    if root is None:
        raise NotFound("there is no GLOBAL instance; name the root to draw")
    return root.id


def depth_first(rows: Sequence[FlatTreeRow]) -> list[FlatTreeRow]:
    """The rows in the order a tree is read: each node followed by its subtree, children
    in the order given. Iterative (a stack), so any depth works."""
    children: dict[str | None, list[FlatTreeRow]] = defaultdict(list)
    ids = {row.instance.id for row in rows}
    for row in rows:
        children[row.parent_id if row.parent_id in ids else None].append(row)
    ordered: list[FlatTreeRow] = []
    stack = list(reversed(children[None]))
    while stack:
        row = stack.pop()
        ordered.append(row)
        stack.extend(reversed(children[row.instance.id]))
    return ordered


def _label(instance: HopperInstance) -> Text:
    return Text.assemble((one_line(instance.name), "bold"), " ", (instance.scope.value, "dim"),
                         " ", status_text(instance.status), " ", (instance.id, "dim"))


def _draw_tree(rows: Sequence[FlatTreeRow], root_id: str) -> None:
    """The rich tree, for a terminal. Rows come parents first, so each node's parent is
    drawn before it: no recursion."""
    nodes: dict[str, Tree] = {}
    for row in rows:
        parent = nodes.get(row.parent_id) if row.parent_id else None
        label = _label(row.instance)
        nodes[row.instance.id] = parent.add(label) if parent else Tree(label)
    out = console()
    out.print(nodes[root_id])
    levels = max(row.depth for row in rows)
    if _GUIDE_WIDTH * levels + 20 > out.width:
        click.echo(f"note: {levels + 1} levels do not fit in {out.width} columns; deep labels "
                   "are cut off (use --max-depth, a wider COLUMNS, or -o wide)", err=True)


def change_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--reason, --actor and --expected-version: what every change of an instance takes."""
    for option in reversed((
            click.option("--reason", help="Why: kept in the audit trail."),
            click.option("--actor", default=default_actor, help="Who the audit trail names."),
            click.option("--expected-version", type=int,
                         help="Refuse unless the instance is at this version."))):
        func = option(func)
    return func


def _lifecycle_command(event: str) -> click.Command:
    @click.argument("ref", shell_complete=complete_ref)
    @change_options
    @json_option
    @click.pass_obj
    def command(backend: Backend, ref: str, reason: str | None, actor: str | None,
                expected_version: Expected, as_json: bool) -> None:
        manager = backend.manager()
        result = manager.transition(resolve_ref(manager, ref), event, reason=reason,
                                    actor=actor, expected_version=expected_version)
        if as_json:
            print_json(transition_dict(result))
            return
        out = console()
        out.print(Text.assemble(f"{_PAST[event]} ", (result.instance.name, "bold"),
                                f" ({result.id}): ", status_text(result.previous_status),
                                " -> ", status_text(result.status)))
        for change in result.cascaded[:_SHOWN_CHANGES]:
            out.print(Text.assemble(f"  {change.event} {change.id}: ",
                                    status_text(change.previous_status), " -> ",
                                    status_text(change.status)))
        if len(result.cascaded) > _SHOWN_CHANGES:
            out.print(f"  ... and {len(result.cascaded) - _SHOWN_CHANGES} more cascaded "
                      "change(s) (--json lists them all)", style="dim")

    command.__doc__ = EVENT_SUMMARIES[event]
    return click.command(event)(command)


for _event in EVENTS:
    instance.add_command(_lifecycle_command(_event))


@instance.command("delete")
@click.argument("ref", shell_complete=complete_ref)
@click.option("--force", is_flag=True, help="Stop what runs in the subtree first.")
@change_options
@json_option
@click.pass_obj
def instance_delete(backend: Backend, ref: str, force: bool, reason: str | None,
                    actor: str | None, expected_version: Expected, as_json: bool) -> None:
    """Delete an instance and its subtree; their history stays."""
    manager = backend.manager()
    result = manager.delete(resolve_ref(manager, ref), force=force, actor=actor,
                            reason=reason, expected_version=expected_version)
    if as_json:
        print_json({"id": result.id, "deleted": result.deleted,
                    "stopped": [{"id": c.id, "previous_status": c.previous_status.value,
                                 "status": c.status.value} for c in result.stopped]})
        return
    out = console()
    out.print(f"deleted {len(result.deleted)} instance(s) (the subtree of {result.id})")
    if result.stopped:
        out.print(f"stopped {len(result.stopped)} running instance(s) first", style="dim")


HISTORY_COLUMNS: list[Column[InstanceEvent]] = [
    Column("seq", lambda e: str(e.seq), justify="right"),
    Column("at", lambda e: _utc(e.at), no_wrap=True),
    Column("event", lambda e: e.event),
    Column("from", lambda e: status_text(e.from_status)),
    Column("to", lambda e: status_text(e.to_status)),
    Column("actor", lambda e: e.actor),
    Column("cause", lambda e: e.cause, no_wrap=True),
    Column("id", lambda e: e.id, wide=True, no_wrap=True),
    Column("instance_id", lambda e: e.instance_id, wide=True, no_wrap=True),
    Column("reason", lambda e: e.reason),
]
"""The columns of the audit trail; -o wide adds the event's id and its instance's."""


@instance.command("history")
@click.argument("ref", shell_complete=complete_ref)
@click.option("--limit", type=click.IntRange(min=1),
              help="At most this many events (with --after: 100 unless given).")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--after", metavar="CURSOR", help="Page by cursor: the `next` a page printed "
              "('' for the first page); each page then costs its own rows.")
@output_option()
@click.pass_obj
def instance_history(backend: Backend, ref: str, limit: int | None, offset: int,
                     after: str | None, output: Output) -> None:
    """Show an instance's audit trail, oldest first (also after it was deleted).

    -o name prints the events' ids, one per line.
    """
    manager = backend.manager()
    instance_id = resolve_ref(manager, ref)
    next_page = None
    if after is None:
        events = cast("list[InstanceEvent]", manager.history(instance_id, offset=offset,
                                                             limit=limit))
    else:
        limit = limit or DEFAULT_PAGE
        page = manager.history_page(instance_id, offset, limit, after=after)
        events, next_page = cast("list[InstanceEvent]", page.items), page.next
    output.records(events, HISTORY_COLUMNS, name=lambda e: e.id, document=lambda: {
        "items": [e.to_dict() for e in events], "offset": offset, "limit": limit,
        **({} if after is None else {"next": next_page})})
    output.note(f"{len(events)} event(s)")
    if next_page is not None:
        output.note(f"next page: --after {next_page}")


@instance.command("health")
@click.argument("ref", shell_complete=complete_ref)
@click.option("--subtree", is_flag=True, help="Roll up the whole subtree.")
@json_option
@click.pass_obj
def instance_health(backend: Backend, ref: str, subtree: bool, as_json: bool) -> None:
    """Show an instance's health: healthy, degraded, unhealthy or unknown, and why."""
    manager = backend.manager()
    report = manager.health_check(resolve_ref(manager, ref), subtree=subtree)
    if as_json:
        print_json(health_dict(report))
        return
    styles = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "cyan"}
    out = console()
    out.print(Text.assemble(f"{report.id} ({report.instance_status.value}): ",
                            (report.status, styles.get(report.status, ""))))
    checks = {"pass": "green", "warn": "yellow", "fail": "red", "unknown": "cyan"}
    for check in report.checks:
        out.print(Text.assemble("  ", (f"{check.status:<7}", checks.get(check.status, "")),
                                f" {check.name}: {check.detail}"))
    if report.subtree is not None:
        counts = ", ".join(f"{n} {s}" for s, n in report.subtree.items() if n)
        out.print(f"subtree: {counts}")
        for instance_id in report.unhealthy:
            out.print(f"  unhealthy: {instance_id}", style="red")


# -- instance update ------------------------------------------------------------------------
def _if_match(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """A version to pin the update to: ``3``, or the ETag the API sent for it (``"3"``,
    also ``W/"3"``), so a version read over HTTP can be pasted as it is."""
    if value is None:
        return None
    tag = value.strip().removeprefix("W/")
    if len(tag) > 1 and tag[0] == tag[-1] == '"':
        tag = tag[1:-1]
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 18):
        raise click.BadParameter(f"{value!r} is not a version (3) or an ETag (\"3\")")
    return int(tag)


@instance.command("update")
@click.argument("ref")
@click.option("--name", help="A new name (unique within the scope).")
@click.option("--config", help="Config changes: a JSON object, or @FILE (JSON or YAML). "
              "Merged into the instance's overrides (null removes a key) unless --replace.")
@click.option("--metadata", help="Metadata changes: a JSON object, or @FILE (JSON or YAML). "
              "Merged into the stored metadata (null removes a key) unless --replace.")
@click.option("--label", "label_args", multiple=True, metavar="KEY=VALUE|KEY-",
              help="Set a label, or remove one with KEY- (repeat for more).")
@click.option("--replace", is_flag=True,
              help="--config, --metadata and --label replace what is stored instead of "
                   "merging.")
@click.option("--if-match", "if_match", metavar="VERSION", callback=_if_match,
              help='Refuse (and change nothing) unless the instance is at this version: '
                   '3, or its ETag "3".')
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def instance_update(backend: Backend, ref: str, name: str | None, config: str | None,
                    metadata: str | None, label_args: tuple[str, ...], replace: bool,
                    if_match: int | None, actor: str | None, as_json: bool) -> None:
    """Change an instance's name, config, metadata and/or labels, as one audited write."""
    if name is None and config is None and metadata is None and not label_args:
        raise click.UsageError(
            "nothing to change: give --name, --config, --metadata and/or --label")
    labels = _labels(label_args, removals=True)
    config_doc = parse_document(config, "--config")
    metadata_doc = parse_document(metadata, "--metadata")
    manager = backend.manager()
    updated = manager.update(resolve_ref(manager, ref), name=name, config=config_doc,
                             metadata=metadata_doc, replace=replace, actor=actor,
                             expected_version=if_match, labels=labels if label_args else None)
    if as_json:
        print_json(updated.to_dict())
    else:
        console().print(Text.assemble("updated ", instance_label(updated),
                                      (f" (version {updated.version})", "dim")))
