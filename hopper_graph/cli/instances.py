"""``instance ...``: create, read and change instances one at a time."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC
from typing import cast

import click
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from hopper_graph.cli.base import (
    Backend,
    cli,
    console,
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
from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType
from hopper_graph.errors import NotFound
from hopper_graph.lifecycle import EVENTS
from hopper_graph.models import FlatTreeRow, InstanceEvent
from hopper_graph.rules import Expected

_PAST = {"start": "started", "stop": "stopped", "pause": "paused", "resume": "resumed",
         "archive": "archived"}
_GUIDE_WIDTH = 4  # columns rich's Tree indents each level by
_SHOWN_CHANGES = 20


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
@click.option("--parent", help="The parent (id or SCOPE:NAME); none for GLOBAL.")
@click.option("--project-id", help="Required for a PROJECT; an ORCHESTRATION inherits it.")
@click.option("--type", "instance_type", type=_TYPES,
              help="Default: SINGLETON for GLOBAL, PERSISTENT for PROJECT, EPHEMERAL for "
                   "ORCHESTRATION.")
@click.option("--config", help="Config overrides: a JSON object, or @FILE (JSON or YAML).")
@click.option("--metadata", help="Free metadata: a JSON object, or @FILE (JSON or YAML).")
@click.option("--id", "instance_id", help="A UUID to use instead of a generated one.")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def instance_create(backend: Backend, name: str, scope: str, parent: str | None,
                    project_id: str | None, instance_type: str | None, config: str | None,
                    metadata: str | None, instance_id: str | None, actor: str | None,
                    as_json: bool) -> None:
    """Create an instance."""
    config_doc = parse_document(config, "--config")
    metadata_doc = parse_document(metadata, "--metadata")
    manager = backend.manager()
    parent_id = resolve_ref(manager, parent) if parent else None
    created = manager.create(name=name, scope=scope, parent_id=parent_id,
                             project_id=project_id, instance_type=instance_type,
                             config=config_doc, metadata=metadata_doc, id=instance_id,
                             actor=actor)
    if as_json:
        print_json(created.to_dict())
    else:
        console().print(Text.assemble("created ", instance_label(created)))


@instance.command("get")
@click.argument("ref")
@json_option
@click.pass_obj
def instance_get(backend: Backend, ref: str, as_json: bool) -> None:
    """Show one instance."""
    manager = backend.manager()
    found = manager.get(resolve_ref(manager, ref))
    if as_json:
        print_json(found.to_dict())
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    data = found.to_dict()
    for key, value in data.items():
        if key == "status":
            grid.add_row(key, status_text(found.status))
        elif isinstance(value, dict):
            grid.add_row(key, Text(json.dumps(value, indent=2, ensure_ascii=False)))
        else:
            grid.add_row(key, Text("-" if value is None else str(value)))
    console().print(grid)


@instance.command("list")
@click.option("--scope", type=_SCOPES)
@click.option("--status", type=_STATUSES)
@click.option("--parent", help="Only the children of this instance (id or SCOPE:NAME).")
@click.option("--project-id")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--after", metavar="CURSOR", help="Page by cursor: the `next` a page printed "
              "('' for the first page); each page then costs its own rows, and no total.")
@json_option
@click.pass_obj
def instance_list(backend: Backend, scope: str | None, status: str | None,
                  parent: str | None, project_id: str | None, limit: int, offset: int,
                  after: str | None, as_json: bool) -> None:
    """List instances in creation order, filtered and a page at a time."""
    manager = backend.manager()
    parent_id = resolve_ref(manager, parent) if parent else None
    page = manager.list(scope=scope, status=status, parent_id=parent_id,
                        project_id=project_id, offset=offset, limit=limit, after=after)
    if as_json:
        print_json({"items": [i.to_dict() for i in page.items], "total": page.total,
                    "offset": page.offset, "limit": page.limit, "next": page.next})
        return
    table = Table(box=None, pad_edge=False)
    for column in ("name", "scope", "status", "project"):
        table.add_column(column, overflow="fold")
    table.add_column("id", no_wrap=True, min_width=36)
    for item in page.items:
        table.add_row(item.name, item.scope.value, status_text(item.status),
                      item.project_id or "-", item.id)
    out = console()
    out.print(table)
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    out.print(f"{shown} of {page.total}" if page.total is not None else
              f"{len(page.items)} shown", style="dim")
    if page.next is not None:
        out.print(f"next page: --after {page.next}", style="dim")


@instance.command("tree")
@click.argument("ref", required=False)
@click.option("--max-depth", type=click.IntRange(min=0),
              help="Levels below the root to show (default: all).")
@json_option
@click.pass_obj
def instance_tree(backend: Backend, ref: str | None, max_depth: int | None,
                  as_json: bool) -> None:
    """Draw the hierarchy below an instance (default: the GLOBAL one).

    With --json, the flat form: every node with its parent_id and its level below the
    root, parents first (deep trees never nest).
    """
    manager = backend.manager()
    if ref:
        root_id = resolve_ref(manager, ref)
    else:
        root = manager.get_global_instance()
        if root is None:
            raise NotFound("there is no GLOBAL instance; name the root to draw")
        root_id = root.id
    rows = cast("list[FlatTreeRow]", manager.get_flat_tree(root_id, max_depth))
    if as_json:
        print_json({"root_id": root_id, "max_depth": max_depth,
                    "items": [{**row.instance.to_dict(), "level": row.depth} for row in rows]})
        return
    # Rows come parents first, so each node's parent is drawn before it: no recursion.
    nodes: dict[str, Tree] = {}
    for row in rows:
        label = instance_label(row.instance)
        parent = nodes.get(row.parent_id) if row.parent_id else None
        nodes[row.instance.id] = parent.add(label) if parent else Tree(label)
    out = console()
    out.print(nodes[root_id])
    counts = Counter(row.instance.status for row in rows)
    summary = ", ".join(f"{counts[s]} {s.value}" for s in InstanceStatus if counts[s])
    levels = max(row.depth for row in rows)
    out.print(f"{len(rows)} instance(s) in {levels + 1} level(s): {summary}", style="dim")
    if _GUIDE_WIDTH * levels + 20 > out.width:
        click.echo(f"note: {levels + 1} levels do not fit in {out.width} columns; deep labels "
                   "are cut off (use --max-depth, a wider COLUMNS, or --json)", err=True)


def _lifecycle_command(event: str) -> click.Command:
    @click.argument("ref")
    @click.option("--reason", help="Why: kept in the audit trail.")
    @click.option("--actor", default=default_actor, help="Who the audit trail names.")
    @click.option("--expected-version", type=int,
                  help="Refuse unless the instance is at this version.")
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

    command.__doc__ = {
        "start": "Start an instance (CREATED or STOPPED -> ACTIVE; its parent must be ACTIVE).",
        "stop": "Stop an instance and everything running below it.",
        "pause": "Pause an ACTIVE instance and the ACTIVE instances below it.",
        "resume": "Resume a PAUSED instance and what its pause paused below it.",
        "archive": "Archive an instance and its subtree (nothing in it may run).",
    }[event]
    return click.command(event)(command)


for _event in EVENTS:
    instance.add_command(_lifecycle_command(_event))


@instance.command("delete")
@click.argument("ref")
@click.option("--force", is_flag=True, help="Stop what runs in the subtree first.")
@click.option("--reason", help="Why: kept in the audit trail.")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@click.option("--expected-version", type=int,
              help="Refuse unless the instance is at this version.")
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


@instance.command("history")
@click.argument("ref")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@json_option
@click.pass_obj
def instance_history(backend: Backend, ref: str, limit: int | None, offset: int,
                     as_json: bool) -> None:
    """Show an instance's audit trail, oldest first (also after it was deleted)."""
    manager = backend.manager()
    events = cast("list[InstanceEvent]",
                  manager.history(resolve_ref(manager, ref), offset=offset, limit=limit))
    if as_json:
        print_json({"items": [e.to_dict() for e in events], "offset": offset, "limit": limit})
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("seq", no_wrap=True, justify="right")
    table.add_column("at (UTC)", no_wrap=True)
    for column in ("event", "change", "actor", "cause", "reason"):
        table.add_column(column, overflow="fold")
    for e in events:
        change = Text.assemble(status_text(e.from_status), " -> ", status_text(e.to_status))
        at = e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(e.seq), at, e.event, change, e.actor or "-", e.cause or "-",
                      e.reason or "-")
    out = console()
    out.print(table)
    out.print(f"{len(events)} event(s)", style="dim")


@instance.command("health")
@click.argument("ref")
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
@click.option("--replace", is_flag=True,
              help="--config and --metadata replace what is stored instead of merging.")
@click.option("--if-match", "if_match", metavar="VERSION", callback=_if_match,
              help='Refuse (and change nothing) unless the instance is at this version: '
                   '3, or its ETag "3".')
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def instance_update(backend: Backend, ref: str, name: str | None, config: str | None,
                    metadata: str | None, replace: bool, if_match: int | None,
                    actor: str | None, as_json: bool) -> None:
    """Change an instance's name, config and/or metadata, as one audited write."""
    if name is None and config is None and metadata is None:
        raise click.UsageError("nothing to change: give --name, --config and/or --metadata")
    config_doc = parse_document(config, "--config")
    metadata_doc = parse_document(metadata, "--metadata")
    manager = backend.manager()
    updated = manager.update(resolve_ref(manager, ref), name=name, config=config_doc,
                             metadata=metadata_doc, replace=replace, actor=actor,
                             expected_version=if_match)
    if as_json:
        print_json(updated.to_dict())
    else:
        console().print(Text.assemble("updated ", instance_label(updated),
                                      (f" (version {updated.version})", "dim")))
