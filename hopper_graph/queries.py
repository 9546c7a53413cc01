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

Text that many queries share is written once, as a fragment, and spliced in where a query
writes ``{{name}}`` or ``{{name(variable)}}``::

    // fragment: instance_map(node)
    // An instance as one map, its timestamps as text.
    node {.*, created_at: toString(node.created_at), ...}

The fragment's declared variable (``node``) is replaced by the query's (``{{instance_map(n)}}``
gives ``n {.*, ...}``); the ``$parameters`` a fragment uses are declared by each query that
uses it, and checked there like its own. ``NamedQuery.text`` is the
expanded query, the one the server runs and Neo4j Browser takes
(``hopper-graph query show NAME`` prints it). An unknown or unused fragment, or a fragment
used with the wrong number of variables, fails loading.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hopper_graph.errors import QueryFileError
from hopper_graph.resources import cypher_dir

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# What cannot hold a parameter, matched left to right so each hides the others' markers:
# string literals, backtick names, line comments and block comments.
_IGNORED = re.compile(
    r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|//[^\n]*|/\*.*?\*/""", re.S)


_USE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*(?:\(\s*([A-Za-z_]\w*)\s*\))?\s*\}\}")
"""Where a query splices a fragment in: ``{{name}}`` or ``{{name(variable)}}``."""


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    doc: str
    text: str
    params: frozenset[str]
    source: str


@dataclass(frozen=True, slots=True)
class Fragment:
    """Cypher text shared by queries, spliced in where they write ``{{name(variable)}}``."""

    name: str
    variable: str | None
    text: str
    source: str

    def expand(self, variable: str | None, user: str) -> str:
        if (variable is None) != (self.variable is None):
            wanted = f"{self.name}({self.variable})" if self.variable else self.name
            raise QueryFileError(f"{user}: fragment {self.name!r} is used as {{{{{wanted}}}}}")
        if self.variable is None or variable is None:
            return self.text
        return re.sub(rf"\b{self.variable}\b", variable, self.text)


def parse_file(path: Path, fragments: dict[str, Fragment] | None = None,
               used: set[str] | None = None) -> list[NamedQuery]:
    """Split one file into its named queries, checking each; the fragments they use come
    from ``fragments`` and from the file itself (their names are added to ``used``)."""
    own, raw = _split(path)
    known = {**(fragments or {}), **own}
    used = set() if used is None else used
    return [_build(header, _expand(body, known, path, str(header["name"]), used), path)
            for header, body in raw]


def parse_fragments(path: Path) -> dict[str, Fragment]:
    """The fragments one file defines."""
    return _split(path)[0]


def _split(path: Path) -> tuple[dict[str, Fragment], list[tuple[dict[str, object], list[str]]]]:
    """The fragments of a file, and the header and body of each of its queries."""
    fragments: dict[str, Fragment] = {}
    queries: list[tuple[dict[str, object], list[str]]] = []
    header: dict[str, object] | None = None
    body: list[str] = []

    def flush() -> None:
        if header is None:
            return
        if header.get("fragment"):
            fragment = _fragment(header, body, path)
            if fragment.name in fragments:
                raise QueryFileError(f"{path.name}: fragment {fragment.name!r} is defined twice")
            fragments[fragment.name] = fragment
        else:
            queries.append((header, body))

    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("// name:"):
            flush()
            header, body = {"name": stripped[8:].strip(), "doc": [], "params": None}, []
        elif stripped.startswith("// fragment:"):
            flush()
            header, body = {"name": stripped[12:].strip(), "doc": [], "params": "-",
                            "fragment": True}, []
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
    return fragments, queries


_SIGNATURE = re.compile(r"([A-Za-z_]\w*)\s*(?:\(\s*([A-Za-z_]\w*)\s*\))?")


def _fragment(header: dict[str, object], body: list[str], path: Path) -> Fragment:
    signature = _SIGNATURE.fullmatch(str(header["name"]))
    if signature is None:
        raise QueryFileError(f"{path.name}: fragment {header['name']!r} is not name or "
                             "name(variable)")
    name, variable = signature.groups()
    text = "\n".join(body).strip()
    if not text:
        raise QueryFileError(f"{path.name}: fragment {name!r} has an empty body")
    return Fragment(name, variable, text, path.name)


def _expand(body: list[str], fragments: dict[str, Fragment], path: Path, user: str,
            used: set[str]) -> list[str]:
    """The body with each ``{{fragment}}`` replaced by its text, indented as its line."""
    where = f"{path.name}: query {user!r}"
    return [_USE.sub(functools.partial(_splice, line=line, fragments=fragments, user=where,
                                       used=used), line)
            for line in body]


def _splice(match: re.Match[str], line: str, fragments: dict[str, Fragment], user: str,
            used: set[str], within: tuple[str, ...] = ()) -> str:
    """One use of a fragment, itself expanded (a fragment may use others, not itself)."""
    fragment = fragments.get(match.group(1))
    if fragment is None:
        raise QueryFileError(f"{user} uses an unknown fragment {match.group(1)!r}")
    if fragment.name in within:
        raise QueryFileError(f"{user}: fragment {fragment.name!r} uses itself")
    used.add(fragment.name)
    text = "\n".join(
        _USE.sub(functools.partial(_splice, line=inner, fragments=fragments, user=user,
                                   used=used, within=(*within, fragment.name)), inner)
        for inner in fragment.expand(match.group(2), user).splitlines())
    indent = line[:len(line) - len(line.lstrip())]
    return text.replace("\n", "\n" + indent)


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
        self.fragments: dict[str, Fragment] = {}
        for path in files:
            for name, fragment in parse_fragments(path).items():
                if name in self.fragments:
                    raise QueryFileError(f"fragment {name!r} is defined in "
                                         f"{self.fragments[name].source} and again in {path.name}")
                self.fragments[name] = fragment
        used: set[str] = set()
        for path in files:
            for query in parse_file(path, self.fragments, used):
                if query.name in self._by_name:
                    first = self._by_name[query.name].source
                    raise QueryFileError(
                        f"query {query.name!r} is defined in {first} and again in {path.name}"
                    )
                self._by_name[query.name] = query
        for name in sorted(set(self.fragments) - used):
            raise QueryFileError(f"fragment {name!r} of {self.fragments[name].source} is used "
                                 "by no query")

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
