"""Commands over the whole graph: ``purge``, ``export``, ``import`` and ``check``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click
from rich.text import Text

from hopper_graph import purge as purging
from hopper_graph.checker import Violation, check_invariants
from hopper_graph.cli.base import (
    EXIT_ERROR,
    Backend,
    cli,
    console,
    default_actor,
    json_option,
    print_json,
)
from hopper_graph.cli.output import Column, Output, output_option
from hopper_graph.purge import PurgeItem, PurgeReport
from hopper_graph.transfer import (
    export_graph,
    file_format,
    import_graph,
    read_export,
    write_export,
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_MAX_DURATION = timedelta(days=100 * 366)
"""As the API's older_than_seconds: older than any instance, and far from datetime.min."""


class Duration(click.ParamType):
    """A duration such as ``30m``, ``12h``, ``7d`` or ``1d12h`` (units s, m, h, d, w)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration such as 30m, 12h, 7d or 1d12h", param, ctx)
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
        if seconds > _MAX_DURATION.total_seconds():
            self.fail(f"{value!r} is longer than 100 years", param, ctx)
        return timedelta(seconds=seconds)


def purge_dict(report: PurgeReport) -> dict[str, Any]:
    def item(i: PurgeItem) -> dict[str, Any]:
        return {"id": i.id, "name": i.name, "scope": i.scope,
                "archived_at": i.archived_at.isoformat() if i.archived_at else None,
                "reason": i.reason}
    return {"dry_run": report.dry_run, "purged": [item(i) for i in report.purged],
            "kept": [item(i) for i in report.kept], "more": report.more,
            "cursor": report.cursor}


@cli.command()
@click.option("--dry-run", is_flag=True, help="Delete nothing; list what would go and why.")
@click.option("--older-than", type=Duration(),
              help="Purge what was archived this long ago (30m, 12h, 7d), instead of each "
                   "instance's own retention.")
@click.option("--limit", type=click.IntRange(1, purging.DEFAULT_LIMIT),
              default=purging.DEFAULT_LIMIT, show_default=True,
              help="Examine at most this many candidates, oldest archive first.")
@click.option("--after", metavar="CURSOR",
              help="Go on after the candidates an earlier purge examined (its cursor).")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@output_option()
@click.pass_obj
def purge(backend: Backend, dry_run: bool, older_than: timedelta | None, limit: int,
          after: str | None, actor: str | None, output: Output) -> None:
    """Delete ARCHIVED EPHEMERAL instances past their retention; their history stays.

    Prints one line per instance looked at: what goes (or would go) and what stays, each
    with the reason; and, when it stopped at --limit, the --after that goes on. -o name
    prints only the ids of what went (or would go).
    """
    report = backend.manager().purge(older_than, dry_run=dry_run, actor=actor, limit=limit,
                                     after=after)
    went = "would-purge" if dry_run else "purged"
    rows = [(went, i) for i in report.purged] + [("kept", i) for i in report.kept]
    if output.format == "name":
        rows = rows[:len(report.purged)]
    output.records(rows, PURGE_COLUMNS, name=lambda r: r[1].id,
                   document=lambda: purge_dict(report))
    went = went.replace("-", " ")
    output.note(f"{went} {len(report.purged)} instance(s), kept {len(report.kept)}"
                + (" (dry run: nothing was deleted)" if dry_run else ""), style="")
    if report.more:
        output.note(f"stopped at the limit of {limit} with more left: go on with "
                    f"--after {report.cursor}", style="")


PURGE_COLUMNS: list[Column[tuple[str, PurgeItem]]] = [
    Column("result", lambda r: r[0]),
    Column("id", lambda r: r[1].id, no_wrap=True),
    Column("name", lambda r: r[1].name),
    Column("scope", lambda r: r[1].scope, wide=True),
    Column("archived_at", lambda r: r[1].archived_at.isoformat() if r[1].archived_at
           else None, wide=True),
    Column("reason", lambda r: r[1].reason),
]
"""A purge's lines: purged (or would-purge, in a dry run) or kept, and why."""


# -- export, import, check ----------------------------------------------------------------
@cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@json_option
@click.pass_obj
def export_command(backend: Backend, file: str, as_json: bool) -> None:
    """Write the whole hierarchy, history included, to FILE (.json, .yaml or .yml)."""
    file_format(file)  # an unknown extension fails before the graph is read
    data = export_graph(backend.driver, backend.database)
    write_export(data, file)
    summary = {"file": file, "instances": len(data["instances"]),
               "events": len(data["events"]), "event_seq": data["event_seq"]}
    if as_json:
        print_json(summary)
    else:
        console().print(f"exported {summary['instances']} instance(s) and "
                        f"{summary['events']} event(s) to {file}")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_obj
def import_command(backend: Backend, file: str, as_json: bool) -> None:
    """Restore an export from FILE into an empty database (statuses and history as-is)."""
    data = read_export(file)
    result = import_graph(backend.driver, data, backend.database)
    if as_json:
        print_json({"file": file, **result.to_dict()})
    else:
        if result.removed_unfinished:
            console().print(f"removed {result.removed_unfinished} node(s) left by an earlier "
                            "import that never finished")
        console().print(f"imported {result.instances} instance(s) and {result.events} "
                        f"event(s) from {file}")


CHECK_COLUMNS: list[Column[Violation]] = [
    Column("kind", lambda v: Text(v.kind, style="red")),
    Column("instance_ids", lambda v: ",".join(v.instance_ids), wide=True),
    Column("message", lambda v: v.message),
]
"""A broken invariant per line; -o wide adds the ids of the instances involved."""


@cli.command()
@output_option()
@click.pass_context
def check(ctx: click.Context, output: Output) -> None:
    """Check the hierarchy invariants; exit code 1 when any is broken.

    -o name prints the ids of the instances involved, each once.
    """
    backend: Backend = ctx.obj
    violations = check_invariants(backend.driver, backend.database)
    if output.format == "name":
        for instance_id in dict.fromkeys(i for v in violations for i in v.instance_ids):
            click.echo(instance_id)
    else:
        output.records(violations, CHECK_COLUMNS, name=str, document=lambda: {
            "violations": [v.to_dict() for v in violations], "count": len(violations)})
    if violations:
        output.note(f"{len(violations)} violation(s)", style="bold red")
        ctx.exit(EXIT_ERROR)
    output.note("no violations", style="green")
