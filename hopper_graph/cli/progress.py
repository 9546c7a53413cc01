"""Progress bars for long commands (export, import, purge, check, apply): on a terminal
only, never in a pipe, a log or a script's captured stderr.

``progress_bar(description, quiet=...)`` yields a callback ``report(done, total)`` (total
None while unknown), which is what the library's long functions take as ``progress``; it
draws on stderr, so stdout keeps only the command's output. Whether stderr is a terminal
is asked of the stream itself, so FORCE_COLOR in a CI job does not fill its log with bars.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

ProgressCallback = Callable[[int, int | None], None]

quiet_option = click.option("-q", "--quiet", is_flag=True,
                            help="No progress bar (there is none unless stderr is a "
                                 "terminal).")


def stderr_console() -> Console:
    """A console on stderr that is a terminal exactly when stderr is one."""
    stream = sys.stderr
    return Console(file=stream, force_terminal=_isatty(stream), highlight=False,
                   markup=False, emoji=False)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@contextmanager
def progress_bar(description: str, *, quiet: bool = False,
                 console: Console | None = None) -> Iterator[ProgressCallback]:
    """A callback that moves a bar on ``console`` (default: stderr) while the block runs;
    one that does nothing when ``quiet`` or when the console is not a terminal. The bar
    is erased when the block ends, leaving the screen to the command's own summary."""
    out = console or stderr_console()
    if quiet or not out.is_terminal:
        yield _silent
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=out,
                  transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def _silent(done: int, total: int | None) -> None:
    """The callback when no bar is shown."""
