"""How a command prints what it found, so that people and scripts can both rely on it.

A command that lists records takes :func:`output_option` and receives ``output``, an
:class:`Output`; it describes its columns once and hands its rows over::

    COLUMNS = [Column("name", lambda i: i.name), Column("id", lambda i: i.id, no_wrap=True),
               Column("version", lambda i: str(i.version), wide=True)]

    @instance.command("list")
    @output_option()
    @click.pass_obj
    def instance_list(backend: Backend, output: Output) -> None:
        page = backend.manager().list()
        output.records(page.items, COLUMNS, name=lambda i: i.id,
                       document=lambda: {"items": [i.to_dict() for i in page.items]})
        output.note(f"{len(page.items)} shown")

The formats, as kubectl names them (``-o/--output``):

- ``table`` (the default): the columns not marked ``wide``, under a header row;
- ``wide``: every column;
- ``name``: one identifier per line (what ``name=`` gives: the instance id for instances);
- ``json`` and ``yaml``: the command's document (what ``document=`` gives); the YAML parses
  back to exactly what the JSON does. ``--json`` is kept as another spelling of ``-o json``.

``--no-headers`` drops the header row; an empty table prints no header at all.

On a terminal, tables are drawn by rich: coloured, fitted to the width (long cells fold).
Anywhere else (a pipe, a file, click's test runner) they are plain text: one line per
record, columns aligned with two spaces, never wrapped or cut, control characters escaped
(a name holding a newline stays on its line), so ``grep -c`` and ``wc -l`` count records.
Notes (summaries, "next page" hints) then go to stderr, leaving stdout to the records; with
``json`` and ``yaml`` they are not printed (the document holds what they say).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import click
import yaml
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])
Cell = str | Text
"""A table cell: a str (escaped here), or a rich Text (styled; the caller escapes it)."""

FORMATS = ("table", "wide", "name", "json", "yaml")
STRUCTURED = ("json", "yaml")
_SEPARATOR = "  "
_MIN_FOLD = 10
"""A terminal table folds no cell narrower than this (or its header)."""

# C0 and C1 control characters and the Unicode line breaks: each would end a line, move the
# cursor or start a terminal escape sequence. Shown escaped, as Python writes them.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r",
                 0x2028: "\\u2028", 0x2029: "\\u2029"})


def one_line(text: str) -> str:
    """``text`` with every control character and line break escaped (``\\n``, ``\\x1b``):
    one record stays one line, and no value can drive the terminal."""
    return text.translate(_ESCAPES)


def is_terminal() -> bool:
    """Whether stdout is a terminal (a person reading), as opposed to a pipe or a file."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def console() -> Console:
    """A console on the current stdout; markup off, so names print verbatim."""
    return Console(markup=False, highlight=False, emoji=False)


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column of a listing: its header and how to read its cell from a record."""

    header: str
    value: Callable[[R], Cell | None]
    wide: bool = False
    """Shown by ``-o wide`` only."""
    no_wrap: bool = False
    """Never folded on a terminal either (ids: a folded id cannot be copied)."""
    justify: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class Output:
    """What ``-o``/``--no-headers`` asked for, and where stdout goes."""

    format: str = "table"
    headers: bool = True
    terminal: bool = False

    @property
    def structured(self) -> bool:
        """json or yaml: one document, no notes."""
        return self.format in STRUCTURED

    @property
    def rich(self) -> bool:
        """A table drawn by rich for a person: on a terminal, in table or wide format."""
        return self.terminal and self.format in ("table", "wide")

    def records(self, rows: Sequence[R], columns: Sequence[Column[R]], *,
                name: Callable[[R], str], document: Callable[[], Any]) -> None:
        """Print ``rows`` in the chosen format; ``document`` is called for json/yaml only."""
        if self.structured:
            self.document(document())
        elif self.format == "name":
            for row in rows:
                click.echo(one_line(name(row)))
        else:
            shown = [c for c in columns if self.format == "wide" or not c.wide]
            self.table([c.header for c in shown], [[c.value(r) for c in shown] for r in rows],
                       shown)

    def document(self, data: Any) -> None:
        """Print ``data`` as JSON or, with ``-o yaml``, as the YAML of that same JSON."""
        if self.format == "yaml":
            click.echo(to_yaml(data), nl=False)
        else:
            click.echo(to_json(data))

    def table(self, header: Sequence[str] | None, rows: Sequence[Sequence[Cell | None]],
              columns: Sequence[Column[Any]] | None = None) -> None:
        """Print rows of cells under ``header`` (``None``, or ``--no-headers``: none); a
        table without rows prints nothing."""
        if not rows:
            return
        header = header if self.headers else None
        if self.rich:
            print_rich(_rich_table(header, rows, columns))
        else:
            click.echo("\n".join(plain_table(header, rows, columns)))

    def note(self, message: str, style: str = "dim") -> None:
        """A line about the records, not one of them: a summary, a hint. Printed under a
        terminal table; on stderr when stdout is not a terminal or holds names; not at all
        beside a json/yaml document."""
        if self.structured:
            return
        if self.rich:  # soft wrap: a long cursor stays one line to copy
            console().print(message, style=style, soft_wrap=True)
        else:
            click.echo(message, err=True)


def plain_table(header: Sequence[str] | None, rows: Iterable[Sequence[Cell | None]],
                columns: Sequence[Column[Any]] | None = None) -> list[str]:
    """The lines of a table in plain text: aligned on two spaces, never wrapped, no trailing
    blanks. A missing cell (None) shows as ``-``, so no field is ever empty."""
    table = [[_plain(cell) for cell in row] for row in rows]
    if header is not None:
        table.insert(0, list(header))
    if not table:
        return []
    widths = [max(cell_len(row[i]) for row in table) for i in range(len(table[0]))]
    right = [c.justify == "right" for c in columns] if columns else [False] * len(widths)
    return [_plain_line(row, widths, right) for row in table]


def _plain(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    return one_line(cell.plain if isinstance(cell, Text) else cell) or "-"


def _plain_line(cells: list[str], widths: list[int], right: list[bool]) -> str:
    padded = [" " * (w - cell_len(c)) + c if r else c + " " * (w - cell_len(c))
              for c, w, r in zip(cells, widths, right, strict=True)]
    return _SEPARATOR.join(padded).rstrip()


def _rich_table(header: Sequence[str] | None, rows: Sequence[Sequence[Cell | None]],
                columns: Sequence[Column[Any]] | None) -> Table:
    """A rich table that folds long cells to fit the terminal, but no column below its
    header or ``_MIN_FOLD`` cells; a table that cannot fit so (its ids alone are wider) is
    laid out whole, each row one line that the terminal wraps, rather than squeezed until
    columns vanish."""
    no_wrap = [bool(c.no_wrap) for c in columns] if columns else [False] * len(rows[0])
    natural = [max(cell_len(_plain(row[i])) for row in rows) for i in range(len(no_wrap))]
    titles = list(header) if header is not None else [""] * len(no_wrap)
    least = [n if keep else min(n, max(cell_len(t), _MIN_FOLD))
             for n, keep, t in zip(natural, no_wrap, titles, strict=True)]
    fits = sum(least) + len(_SEPARATOR) * (len(least) - 1) <= console().width
    table = Table(box=None, pad_edge=False, show_header=header is not None,
                  width=None if fits else _natural_width(natural, titles))
    for index, title in enumerate(titles):
        table.add_column(title, no_wrap=no_wrap[index] or not fits, overflow="fold",
                         min_width=least[index],
                         justify=columns[index].justify if columns else "left")
    for row in rows:
        table.add_row(*(_rich_cell(cell) for cell in row))
    return table


def _natural_width(natural: list[int], titles: list[str]) -> int:
    widths = [max(n, cell_len(t)) for n, t in zip(natural, titles, strict=True)]
    return sum(widths) + len(_SEPARATOR) * (len(widths) - 1)


def print_rich(table: Table) -> None:
    """Print a table from :func:`_rich_table`: one wider than the terminal whole, uncut."""
    out = console()
    if table.width is None:
        out.print(table)
    else:
        out.print(table, width=table.width, crop=False)


def _rich_cell(cell: Cell | None) -> Text:
    if cell is None:
        return Text("-", style="dim")
    return cell if isinstance(cell, Text) else Text(one_line(cell))


# -- json and yaml ------------------------------------------------------------------------
def to_json(data: Any) -> str:
    """The JSON the commands print: indented, UTF-8 as is, anything else as its str()."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def to_json_line(data: Any) -> str:
    """As :func:`to_json`, on one line: a record of a JSON Lines stream."""
    return json.dumps(data, ensure_ascii=False, default=str)


def to_yaml(data: Any) -> str:
    """YAML that loads back to exactly what :func:`to_json` gives: the data goes through
    JSON first (datetimes become the same strings), and the safe dumper quotes any string
    YAML would otherwise read as something else ('yes', '2025-01-06', '1e3')."""
    plain = json.loads(json.dumps(data, ensure_ascii=False, default=str))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(plain, Dumper=dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=False))


# -- the option ---------------------------------------------------------------------------
def output_option(formats: Sequence[str] = FORMATS, *, headers: bool = True
                  ) -> Callable[[F], F]:
    """Add ``-o/--output`` (one of ``formats``; ``table`` first, the default), ``--json``
    (the same as ``-o json``) and, with ``headers``, ``--no-headers`` to a command, which
    then receives them as one keyword argument, ``output`` (an :class:`Output`)."""
    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, output_format: str | None, as_json: bool,
                    no_headers: bool = False, **kwargs: Any) -> Any:
            kwargs["output"] = resolve_output(output_format or formats[0], as_json,
                                              no_headers, given=output_format is not None)
            return func(*args, **kwargs)

        options = [
            click.option("-o", "--output", "output_format", show_default=formats[0],
                         type=click.Choice(formats, case_sensitive=False),
                         help="Output format."),
            click.option("--json", "as_json", is_flag=True, help="The same as -o json."),
        ]
        if headers:
            options.append(click.option("--no-headers", is_flag=True,
                                        help="Print no header row."))
        for option in reversed(options):
            command = option(command)
        return command  # type: ignore[return-value]
    return decorate


def resolve_output(output_format: str, as_json: bool = False, no_headers: bool = False,
                   given: bool = True) -> Output:
    """The :class:`Output` for the given options (``given``: whether ``-o`` was); ``--json``
    beside another ``-o`` is a usage error rather than a silent choice of one of them."""
    chosen = output_format.lower()
    if as_json and given and chosen != "json":
        raise click.UsageError(f"--json is -o json: it cannot go with -o {chosen}")
    return Output(format="json" if as_json else chosen, headers=not no_headers,
                  terminal=is_terminal())
