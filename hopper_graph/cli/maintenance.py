"""Commands over the whole graph: ``purge``, ``export``, ``import`` and ``check``.

Each shows a progress bar on stderr when it is a terminal (``--quiet``: never).
``export -`` writes the data to stdout and ``import -`` reads it from stdin; then nothing
else goes to stdout (the summary goes to stderr).
"""

from __future__ import annotations

import io
import json
import re
import sys
from datetime import timedelta
from typing import Any

import click
from rich.text import Text

from hopper_graph import purge as purging
from hopper_graph.checker import Violation, check_invariants
from hopper_graph.cli.base import (
    EXIT_ERROR,
    EXIT_USAGE,
    Backend,
    cli,
    default_actor,
    json_option,
    print_json,
)
from hopper_graph.cli.output import Column, Output, console, output_option
from hopper_graph.cli.progress import progress_bar, quiet_option
from hopper_graph.errors import CommandError, ValidationError
from hopper_graph.purge import PurgeItem, PurgeReport
from hopper_graph.transfer import (
    FORMATS,
    dump_export,
    export_graph,
    file_format,
    import_graph,
    load_export,
    read_export,
    write_export,
)

STDIO = "-"

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
@quiet_option
@output_option()
@click.pass_obj
def purge(backend: Backend, dry_run: bool, older_than: timedelta | None, limit: int,
          after: str | None, actor: str | None, quiet: bool, output: Output) -> None:
    """Delete ARCHIVED EPHEMERAL instances past their retention; their history stays.

    Prints one line per instance looked at: what goes (or would go) and what stays, each
    with the reason; and, when it stopped at --limit, the --after that goes on. -o name
    prints only the ids of what went (or would go).
    """
    with progress_bar("examining candidates", quiet=quiet) as progress:
        report = backend.manager().purge(older_than, dry_run=dry_run, actor=actor,
                                         limit=limit, after=after, progress=progress)
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
def format_option(for_stdio: str) -> Any:
    return click.option("--format", "kind", type=click.Choice(FORMATS),
                        help=f"Default: by FILE's extension; for -, {for_stdio}.")


@cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, allow_dash=True))
@format_option("json")
@quiet_option
@json_option
@click.pass_obj
def export_command(backend: Backend, file: str, kind: str | None, quiet: bool,
                   as_json: bool) -> None:
    """Write the whole hierarchy, history included, to FILE (.json, .yaml or .yml), or
    with FILE `-` to stdout (the summary then goes to stderr)."""
    kind = chosen_format(file, kind) or "json"  # a bad name fails before the graph is read
    with progress_bar("exporting", quiet=quiet) as progress:
        data = export_graph(backend.driver, backend.database, progress=progress)
    write_output(data, file, kind, quiet)
    summary = {"file": file, "instances": len(data["instances"]),
               "events": len(data["events"]), "event_seq": data["event_seq"]}
    where = "stdout" if file == STDIO else file
    text = (json.dumps(summary) if as_json else
            f"exported {summary['instances']} instance(s) and {summary['events']} event(s) "
            f"to {where}")
    click.echo(text, err=file == STDIO)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@format_option("recognised from the data")
@quiet_option
@json_option
@click.pass_obj
def import_command(backend: Backend, file: str, kind: str | None, quiet: bool,
                   as_json: bool) -> None:
    """Restore an export from FILE, or with FILE `-` from stdin, into an empty database
    (statuses and history as-is)."""
    where = "stdin" if file == STDIO else file
    data = read_input(file, kind, quiet)
    with progress_bar("importing", quiet=quiet) as progress:
        result = import_graph(backend.driver, data, backend.database, progress=progress,
                              source=file)
    if as_json:
        print_json({"file": file, **result.to_dict()})
    else:
        if result.removed_unfinished:
            console().print(f"removed {result.removed_unfinished} node(s) left by an earlier "
                            "import that never finished")
        console().print(f"imported {result.instances} instance(s) and {result.events} "
                        f"event(s) from {where}")


def chosen_format(file: str, kind: str | None) -> str | None:
    """The format of FILE: ``--format`` if given, else its extension; for ``-``, only
    ``--format`` (None: the caller's default). A known extension that contradicts
    ``--format`` is refused: the file would not read back by its name."""
    if file == STDIO:
        return kind
    try:
        by_name = file_format(file)
    except ValidationError:
        if kind is not None:
            return kind
        raise
    if kind is not None and kind != by_name:
        raise ValidationError(f"{file}: --format {kind} contradicts its extension",
                              errors={"format": ["contradicts its extension"]})
    return by_name


def write_output(data: dict[str, Any], file: str, kind: str, quiet: bool) -> None:
    """The export into FILE, or onto stdout for ``-``."""
    if file == STDIO:
        write_stdout(data, kind)
        return
    with progress_bar(f"writing {file}", quiet=quiet):  # YAML takes minutes at 100k
        write_export(data, file, kind)


def read_input(file: str, kind: str | None, quiet: bool) -> dict[str, Any]:
    """The export in FILE, or on stdin for ``-`` (refused from a terminal, where it would
    wait, silently, for someone to type a backup)."""
    if file == STDIO and sys.stdin.isatty():
        raise CommandError("import - reads an export from stdin: pipe or redirect one in "
                           "(hopper-graph import - < backup.json)", EXIT_USAGE)
    with progress_bar(f"reading {'stdin' if file == STDIO else file}", quiet=quiet):
        if file == STDIO:
            return read_stdin(kind)
        return read_export(file, chosen_format(file, kind))


def write_stdout(data: dict[str, Any], kind: str) -> None:
    """The export on stdout as UTF-8, whatever the locale says, as a file would hold it."""
    sys.stdout.flush()
    stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8")
    try:
        dump_export(data, stream, kind)
        stream.flush()
    finally:
        stream.detach()  # leave stdout itself open


def read_stdin(kind: str | None) -> dict[str, Any]:
    """An export from stdin, read as UTF-8 as a file is."""
    stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    try:
        return load_export(stream, kind, "stdin")
    finally:
        stream.detach()  # leave stdin itself open


CHECK_COLUMNS: list[Column[Violation]] = [
    Column("kind", lambda v: Text(v.kind, style="red")),
    Column("instance_ids", lambda v: ",".join(v.instance_ids), wide=True),
    Column("message", lambda v: v.message),
]
"""A broken invariant per line; -o wide adds the ids of the instances involved."""


@cli.command()
@quiet_option
@output_option()
@click.pass_context
def check(ctx: click.Context, quiet: bool, output: Output) -> None:
    """Check the hierarchy invariants; exit code 1 when any is broken.

    -o name prints the ids of the instances involved, each once.
    """
    backend: Backend = ctx.obj
    with progress_bar("checking", quiet=quiet) as progress:
        violations = check_invariants(backend.driver, backend.database, progress=progress)
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
