"""Named Cypher queries, loaded from the ``.cypher`` files under ``cypher/``.

Each query opens with a header of ``//`` lines, then its body::

    // name: get_ancestors
    // The chain of parents of an instance, nearest first.
    // params: id
    MATCH ...

The ``params:`` line declares every ``$parameter`` the body uses (``params: -`` for none),
so the file doubles as documentation for the ``:param`` lines Neo4j Browser needs. Loading
fails loudly on a duplicate name, an empty body, or a parameter used but not declared (or
declared but not used). Labels, types and property names are never parameters: they are
written in the files, and user data only ever arrives as ``$parameters``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hopper_graph.resources import cypher_dir

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# What cannot hold a parameter, matched left to right so each hides the others' markers:
# string literals, backtick names, line comments and block comments.
_IGNORED = re.compile(
    r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|//[^\n]*|/\*.*?\*/""", re.S)


class QueryFileError(ValueError):
    """A ``.cypher`` file breaks the named-query convention."""


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    doc: str
    text: str
    params: frozenset[str]
    source: str


def parse_file(path: Path) -> list[NamedQuery]:
    """Split one file into its named queries, checking each."""
    queries: list[NamedQuery] = []
    header: dict[str, object] | None = None
    body: list[str] = []

    def flush() -> None:
        if header is not None:
            queries.append(_build(header, body, path))

    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("// name:"):
            flush()
            header, body = {"name": stripped[8:].strip(), "doc": [], "params": None}, []
        elif header is None:
            if stripped and not stripped.startswith("//"):
                raise QueryFileError(f"{path.name}: text before the first '// name:' header")
        elif not body and stripped.startswith("// params:"):
            header["params"] = stripped[10:].strip()
        elif not body and stripped.startswith("//"):
            header["doc"].append(stripped[2:].strip())  # type: ignore[attr-defined]
        else:
            body.append(line)
    flush()
    return queries


def _build(header: dict[str, object], body: list[str], path: Path) -> NamedQuery:
    name = str(header["name"])
    text = "\n".join(body).strip()
    if not name.isidentifier():
        raise QueryFileError(f"{path.name}: query name {name!r} is not an identifier")
    if not text:
        raise QueryFileError(f"{path.name}: query {name!r} has an empty body")
    if header["params"] is None:
        raise QueryFileError(f"{path.name}: query {name!r} lacks a '// params:' line")
    declared = {p.strip().lstrip("$") for p in str(header["params"]).split(",")} - {"-", ""}
    used = set(_PARAM.findall(_IGNORED.sub(" ", text)))
    if used != declared:
        raise QueryFileError(
            f"{path.name}: query {name!r} uses {sorted(used)} but declares {sorted(declared)}"
        )
    doc = " ".join(header["doc"])  # type: ignore[arg-type]
    return NamedQuery(name, doc, text, frozenset(declared), path.name)


class Queries:
    """All named queries of a folder, as attributes: ``QUERIES.get_ancestors.text``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or cypher_dir()
        self._by_name: dict[str, NamedQuery] = {}
        files = sorted(self.folder.glob("*.cypher"))
        if not files:
            raise QueryFileError(f"no .cypher files in {self.folder}")
        for path in files:
            for query in parse_file(path):
                if query.name in self._by_name:
                    first = self._by_name[query.name].source
                    raise QueryFileError(
                        f"query {query.name!r} is defined in {first} and again in {path.name}"
                    )
                self._by_name[query.name] = query

    def __getattr__(self, name: str) -> NamedQuery:
        try:
            return self._by_name[name]
        except KeyError:
            raise AttributeError(f"no named query {name!r} in {self.folder}") from None

    def __iter__(self) -> Iterator[NamedQuery]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


QUERIES = Queries()
