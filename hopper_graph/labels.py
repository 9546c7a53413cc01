"""Labels and label selectors, in Kubernetes' syntax: pure, no neo4j import.

A label is a key and a value, both strings. A key is an optional prefix, a DNS subdomain
of at most 253 characters, and ``/``, then a name of at most 63 characters of
``[A-Za-z0-9._-]`` that starts and ends with a letter or digit. A value is at most 63 of
the same characters, or empty. :func:`check_labels` refuses anything else, naming the key.

A selector is requirements joined by commas, every one of which must hold::

    team=infra,tier!=batch,env in (prod,staging),!legacy

=========================  ==============================================================
``key=value``, ``==``      the instance has ``key`` with that value
``key!=value``             it has not (an instance without ``key`` matches)
``key in (v1,v2)``         it has ``key`` with one of the values
``key notin (v1,v2)``      it has not (an instance without ``key`` matches)
``key``                    it has ``key``, whatever the value
``!key``                   it has no ``key``
=========================  ==============================================================

:func:`parse_selector` turns the text into a :class:`Selector`; malformed text raises
:class:`~hopper_graph.errors.InvalidSelector`, which says at which character it went
wrong. A selector hands the queries parameters only (:meth:`Selector.params`): the Cypher
is fixed text (cypher/fragments.cypher, ``selector_matches``), never built from input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hopper_graph.errors import InvalidSelector, ValidationError

MAX_NAME = 63
"""The longest label name (the part after the prefix) and the longest value."""
MAX_PREFIX = 253
"""The longest key prefix (a DNS subdomain)."""
MAX_LABELS = 64
"""The most labels one instance may carry."""
MAX_REQUIREMENTS = 32
"""The most requirements one selector may hold."""
MAX_SELECTOR = 4096
"""The longest selector text."""

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\Z")
_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
_VALUE_CHARS = re.compile(r"[A-Za-z0-9._-]*")

Op = Literal["in", "notin", "exists", "!exists"]


def key_problem(key: object) -> str | None:
    """Why ``key`` is not a label key, or None when it is one."""
    if not isinstance(key, str):
        return "a label key must be a string"
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "the prefix before '/' is empty"
        if len(prefix) > MAX_PREFIX or not _PREFIX.match(prefix):
            return (f"the prefix must be a DNS subdomain of at most {MAX_PREFIX} characters "
                    "(lower-case letters, digits, '-' and '.')")
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME:
        return f"the name is longer than {MAX_NAME} characters"
    if not _NAME.match(name):
        return ("the name must be letters, digits, '-', '_' and '.', starting and ending "
                "with a letter or digit")
    return None


def value_problem(value: object) -> str | None:
    """Why ``value`` is not a label value, or None when it is one ('' is)."""
    if not isinstance(value, str):
        return "a label value must be a string"
    if len(value) > MAX_NAME:
        return f"the value is longer than {MAX_NAME} characters"
    if value and not _NAME.match(value):
        return ("the value must be empty or letters, digits, '-', '_' and '.', starting and "
                "ending with a letter or digit")
    return None


def check_labels(labels: object, *, removals: bool = False) -> None:
    """Refuse anything but a map of label keys to label values, naming each bad key
    (``labels.KEY``). With ``removals`` (a PATCH) a None value is allowed: it removes."""
    if not isinstance(labels, Mapping):
        raise ValidationError("labels must be an object", errors={"labels": ["must be an object"]})
    errors: dict[str, list[str]] = {}
    for key, value in labels.items():
        problem = key_problem(key) or (
            None if value is None and removals else value_problem(value))
        if problem is not None:
            errors[f"labels.{key}"] = [problem]
    if not errors and len(labels) > MAX_LABELS:
        errors["labels"] = [f"at most {MAX_LABELS} labels"]
    if errors:
        first = next(iter(errors))
        raise ValidationError(f"invalid label {first.removeprefix('labels.')!r}: "
                              f"{errors[first][0]}", errors=errors)


def merged(stored: Mapping[str, str], changes: Mapping[str, str | None],
           replace: bool = False) -> dict[str, str]:
    """The labels after a PATCH: ``changes`` merge into ``stored`` (a None value removes
    its key), or replace them."""
    result = {} if replace else dict(stored)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return dict(sorted(result.items()))


def pairs(labels: Mapping[str, str]) -> list[str]:
    """The labels as ``key=value`` strings, sorted: the form the graph keeps beside the
    JSON text, from which the label edges are written and selectors are tested (a key
    never holds '=', so the first '=' splits it from the value)."""
    return sorted(f"{key}={value}" for key, value in labels.items())


def changed_keys(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The keys added, removed or given another value, sorted."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


# -- selectors ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    """One requirement of a selector: ``key`` with ``op`` over ``values``. ``=`` is ``in``
    with one value and ``!=`` is ``notin`` with one value."""

    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        found = self.key in labels and labels[self.key] in self.values
        return found if self.op == "in" else not found


@dataclass(frozen=True)
class Selector:
    """Requirements that must all hold; the empty selector matches everything."""

    requirements: tuple[Requirement, ...]
    text: str = ""

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def seek(self) -> Requirement | None:
        """The requirement an index can seek (the first ``=`` or ``in``, fewest values
        first), or None when there is none (then the selector can only filter)."""
        positive = [r for r in self.requirements if r.op == "in"]
        return min(positive, key=lambda r: len(r.values)) if positive else None

    def params(self) -> list[dict[str, Any]]:
        """The requirements as the ``$selector`` parameter of the queries:
        ``{key, op, pairs}``, ``pairs`` being ``key=value`` strings as the graph keeps them."""
        return [{"key": r.key, "op": r.op, "pairs": [f"{r.key}={v}" for v in r.values]}
                for r in self.requirements]


EVERYTHING = Selector(())


def selector_of(selector: Selector | str | None) -> Selector:
    """A Selector from a Selector, its text, or None (everything)."""
    if selector is None:
        return EVERYTHING
    if isinstance(selector, Selector):
        return selector
    return parse_selector(selector)


_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|\(|\)|,|!)|(?P<word>[A-Za-z0-9._/-]+))")


class _Parser:
    """A recursive-descent parser over tokens, each with the position it starts at."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, position)
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                start = pos + len(text[pos:]) - len(text[pos:].lstrip())
                self.fail(start, f"unexpected character {text[start]!r}")
            assert match is not None
            kind = "op" if match["op"] else "word"
            start = match.start(kind)
            self.tokens.append((kind, match[kind], start))
            pos = match.end()
        self.at = 0

    def fail(self, position: int, message: str) -> None:
        raise InvalidSelector(
            f"invalid selector at position {position + 1}: {message}",
            errors={"selector": [f"position {position + 1}: {message}"]},
            selector=self.text, position=position + 1)

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def where(self) -> int:
        token = self.peek()
        return token[2] if token else len(self.text)

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            self.fail(len(self.text), "the selector ends too early")
        assert token is not None
        self.at += 1
        return token

    def expect(self, op: str) -> None:
        kind, text, position = self.take()
        if kind != "op" or text != op:
            self.fail(position, f"expected {op!r}, found {text!r}")

    def key(self) -> str:
        kind, text, position = self.take()
        if kind != "word":
            self.fail(position, f"expected a label key, found {text!r}")
        problem = key_problem(text)
        if problem:
            self.fail(position, f"{text!r} is not a label key: {problem}")
        return text

    def value(self) -> str:
        """A value, which may be empty: then the next token is not a word."""
        token = self.peek()
        if token is None or token[0] != "word":
            return ""
        self.at += 1
        problem = value_problem(token[1])
        if problem:
            self.fail(token[2], f"{token[1]!r} is not a label value: {problem}")
        return token[1]

    def requirement(self) -> Requirement:
        token = self.peek()
        if token is not None and token[:2] == ("op", "!"):
            self.at += 1
            return Requirement(self.key(), "!exists")
        key = self.key()
        token = self.peek()
        if token is None or token[:2] in (("op", ","),):
            return Requirement(key, "exists")
        kind, text, position = token
        if kind == "op" and text in ("=", "==", "!="):
            self.at += 1
            return Requirement(key, "in" if text != "!=" else "notin", (self.value(),))
        if kind == "word" and text in ("in", "notin"):
            self.at += 1
            return Requirement(key, "in" if text == "in" else "notin", self.values())
        self.fail(position, f"expected '=', '==', '!=', 'in', 'notin' or ',' after "
                            f"{key!r}, found {text!r}")
        raise AssertionError  # fail raised

    def values(self) -> tuple[str, ...]:
        self.expect("(")
        values = [self.value()]
        while True:
            kind, text, position = self.take()
            if (kind, text) == ("op", ")"):
                break
            if (kind, text) != ("op", ","):
                self.fail(position, f"expected ',' or ')', found {text!r}")
            values.append(self.value())
        return tuple(dict.fromkeys(values))

    def selector(self) -> Selector:
        requirements: list[Requirement] = []
        while self.peek() is not None:
            if requirements:
                self.expect(",")
            if len(requirements) == MAX_REQUIREMENTS:
                self.fail(self.where(), f"more than {MAX_REQUIREMENTS} requirements")
            requirements.append(self.requirement())
        return Selector(tuple(requirements), self.text)


def parse_selector(text: str) -> Selector:
    """The Selector a text spells; InvalidSelector, naming the position (1-based), when it
    is malformed. Empty or blank text selects everything."""
    if not isinstance(text, str):
        raise InvalidSelector("a selector must be text", errors={"selector": ["must be text"]})
    if len(text) > MAX_SELECTOR:
        raise InvalidSelector(f"a selector is at most {MAX_SELECTOR} characters", errors={
            "selector": [f"at most {MAX_SELECTOR} characters"]}, position=MAX_SELECTOR + 1)
    return _Parser(text).selector()
