"""The schema's migrations as a table, no server needed: numbered 1 to n, each statement
idempotent, and readable as the constraints and indexes they leave in place (which
tests/integration/test_schema.py holds the server's SHOW output to)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hopper_graph.schema import MIGRATIONS

_CREATE = re.compile(
    r"^CREATE (?P<kind>CONSTRAINT|(?:(?P<index_type>RANGE|TEXT|POINT|FULLTEXT|VECTOR) )?INDEX)"
    r" (?P<name>\w+) IF NOT EXISTS FOR "
    r"(?:\(\w+:(?P<label>\w+)\)|\(\)-\[\w+:(?P<type>\w+)\]-\(\)) (?:REQUIRE|ON(?: EACH)?) "
    r"(?P<rest>.+)$")
_DROP = re.compile(r"^DROP (?:CONSTRAINT|INDEX) (?P<name>\w+) IF EXISTS$")


@dataclass(frozen=True)
class Declared:
    kind: str  # CONSTRAINT or INDEX
    index_type: str
    name: str
    label: str
    """The node label, or the relationship type of a relationship index."""
    properties: tuple[str, ...]
    unique: bool


def declared_schema() -> dict[str, Declared]:
    """Every constraint and index the migrations leave in place, by name."""
    declared: dict[str, Declared] = {}
    for migration in MIGRATIONS:
        for statement in migration.statements:
            statement = " ".join(statement.split())
            if drop := _DROP.match(statement):
                declared.pop(drop["name"], None)
                continue
            match = _CREATE.match(statement)
            assert match, f"this test cannot read migration {migration.version}: {statement}"
            declared[match["name"]] = Declared(
                kind="CONSTRAINT" if match["kind"] == "CONSTRAINT" else "INDEX",
                index_type=match["index_type"] or "RANGE",
                name=match["name"], label=match["label"] or match["type"],
                properties=tuple(re.findall(r"\w+\.(\w+)", match["rest"])),
                unique=match["rest"].endswith("IS UNIQUE"))
    return declared


def test_the_migrations_are_numbered_1_to_n_and_every_statement_is_idempotent():
    # Numbers are handed to branches ahead of their merge, so a branch may lack some of the
    # numbers below its own: increasing and unique is what apply_schema relies on.
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert all(m.name.strip() for m in MIGRATIONS)
    for migration in MIGRATIONS:
        for statement in migration.statements:
            assert "IF NOT EXISTS" in statement or "IF EXISTS" in statement, statement
    assert declared_schema()
