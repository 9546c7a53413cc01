"""``apply -f FILE``: make the graph hold the hierarchy a YAML or JSON document describes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hopper_graph.apply import (
    CREATED,
    UNCHANGED,
    UPDATED,
    AppliedInstance,
    ApplyReport,
    apply_document,
    check_document,
    read_document,
)
from hopper_graph.cli.base import Backend, cli, default_actor
from hopper_graph.cli.output import Output, output_option
from hopper_graph.cli.progress import quiet_option, stderr_console


@cli.command("apply")
@click.option("-f", "--filename", "source", required=True, metavar="FILE",
              help="The document: YAML, or JSON for a .json file; - reads standard input.")
@click.option("--replace", is_flag=True,
              help="The document's config and metadata replace what is stored, instead of "
                   "merging into it (keys it leaves out are removed).")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@quiet_option
@output_option(("table", "name", "json", "yaml"), headers=False)
@click.pass_obj
def apply(backend: Backend, source: str, replace: bool, actor: str | None, quiet: bool,
          output: Output) -> None:
    """Create or update a whole hierarchy from a document; running it again changes nothing.

    Instances are matched by scope and name: a missing one is created, one whose config,
    metadata or status differs from the document is updated, the others are left as they
    are. Nothing the document does not name is ever deleted. One line per instance
    (created / updated / unchanged SCOPE:NAME ID), then a summary; -o name prints the ids,
    -o json/yaml the report. See docs/cli.md for the document's format.
    """
    data = _read(source)
    total = len(check_document(data))  # a bad document fails before connecting
    manager = backend.manager()
    lines = output.format == "table"  # streamed as each instance is done
    with _reporter(total, quiet) as report_line:
        def progress(item: AppliedInstance, _done: int, _total: int) -> None:
            report_line(_line(item) if lines else None)

        report = apply_document(manager, data, replace=replace, actor=actor,
                                progress=progress)
    if lines:
        click.echo(_summary(report))
    elif output.format == "name":
        for item in report.items:
            click.echo(item.instance.id)
    else:
        output.document(report.to_dict())


def _read(source: str) -> Any:
    """The document's data: standard input for ``-``, else the file (JSON when it ends in
    .json, YAML otherwise; YAML reads JSON too)."""
    if source == "-":
        return read_document(sys.stdin.read(), "yaml")
    path = Path(source)
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return read_document(path.read_text(encoding="utf-8"), fmt)


def _line(item: AppliedInstance) -> str:
    changed = f" ({', '.join(item.changed)})" if item.changed and item.action == UPDATED \
        else ""
    return f"{item.action} {item.label} {item.instance.id}{changed}"


def _summary(report: ApplyReport) -> str:
    counts = {action: report.count(action) for action in (CREATED, UPDATED, UNCHANGED)}
    if not report.changed:
        return f"nothing to change: {counts[UNCHANGED]} instance(s) unchanged"
    return (f"{len(report.items)} instance(s): {counts[CREATED]} created, "
            f"{counts[UPDATED]} updated, {counts[UNCHANGED]} unchanged")


def _echo(line: str | None) -> None:
    if line is not None:
        click.echo(line)


@contextlib.contextmanager
def _reporter(total: int, quiet: bool) -> Iterator[Callable[[str | None], None]]:
    """A function taking each instance's line (None: no line) as it is done: printed to
    stdout, with a progress bar below them when stderr is a terminal and not ``quiet``."""
    terminal = stderr_console()
    if quiet or total == 0 or not terminal.is_terminal:
        yield _echo
        return
    columns = (TextColumn("apply"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=terminal, transient=True,
                  redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task("apply", total=total)
        shared = sys.stdout.isatty()  # one screen: print above the bar, not through it

        def report_line(line: str | None) -> None:
            if line is not None and shared:
                bar.console.print(line, markup=False, highlight=False)
            else:
                _echo(line)
            bar.advance(task)
        yield report_line
