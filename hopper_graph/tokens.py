"""Scoped API tokens: a role on a subtree of the hierarchy.

A token is a ``(:HopperToken)`` node with a ``GRANTS`` edge to the root of its subtree
(cypher/tokens.cypher). Its secret is shown once, when it is created, and never stored:
the node keeps the SHA-256 of it. The secret reads ``hgt_<id>_<random>``: the id finds the
node by an index seek (the ``hopper_token_id`` constraint), and the 256 random bits make
a plain hash enough (a slow password hash guards guessable secrets; these are not).

Roles, each including the one before:

- ``reader``: read (GET) the subtree;
- ``operator``: also lifecycle events, heartbeats, create and update in the subtree;
- ``admin``: also delete, purge, move and liens in the subtree.

A token covers an instance when the token's root is the instance or one of its ancestors
(:meth:`TokenStore.covers`: a walk up from the instance, whose cost is its depth). Nothing
above the root is covered, so a token on a PROJECT cannot act on the PROJECT's parent.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hopper_graph.errors import Forbidden, NotFound, ValidationError
from hopper_graph.graph import Graph
from hopper_graph.queries import QUERIES
from hopper_graph.rules import MAX_TEXT_LENGTH

PREFIX = "hgt_"
"""Every scoped token's secret starts with this (so a leaked one is easy to spot)."""
_SECRET = re.compile(r"hgt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
MAX_LIFETIME = timedelta(days=3650)


class Role(enum.IntEnum):
    """What a token may do; each role includes the ones below it."""

    READER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: Role | str) -> Role:
        if isinstance(value, Role):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            raise ValidationError(
                f"unknown role {value!r}: reader, operator or admin",
                errors={"role": ["must be reader, operator or admin"]}) from None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: everything but its secret (which is never kept)."""

    id: str
    role: Role
    root_id: str
    root_name: str | None
    """The root's name and scope; None once the root has been deleted."""
    root_scope: str | None
    description: str | None
    created_by: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    @property
    def status(self) -> str:
        """``active``, ``expired`` or ``revoked`` (``orphaned`` once its root is gone)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and datetime.fromisoformat(
                self.expires_at) <= datetime.now(UTC):
            return "expired"
        return "active" if self.root_name is not None else "orphaned"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role.label, "root_id": self.root_id,
                "root_name": self.root_name, "root_scope": self.root_scope,
                "description": self.description, "created_by": self.created_by,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "revoked_at": self.revoked_at, "status": self.status}


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: its ``secret``, shown this once, and what it grants."""

    secret: str
    info: TokenInfo


@dataclass(frozen=True, slots=True)
class Grant:
    """What an authenticated secret may do: ``role`` on the subtree of ``root_id``
    (``None``: the whole graph, as ``HOPPER_API_TOKEN`` grants)."""

    role: Role
    root_id: str | None
    token_id: str | None = None
    root_global: bool = False
    """The root is the GLOBAL instance: the token covers the whole hierarchy."""

    @property
    def whole_graph(self) -> bool:
        return self.root_id is None or self.root_global


WHOLE_GRAPH_ADMIN = Grant(Role.ADMIN, None)
"""The grant of the server's own ``HOPPER_API_TOKEN``."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Creates, lists, revokes and checks scoped tokens in one graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def create(self, root_id: str, role: Role | str, *, expires_in: timedelta | None = None,
               description: str | None = None, actor: str | None = None) -> NewToken:
        """A new token granting ``role`` on the subtree of ``root_id``; NotFound when
        there is no such instance. The returned secret is not stored anywhere."""
        role = Role.parse(role)
        _check_text("description", description)
        _check_text("actor", actor)
        now = datetime.now(UTC)
        if expires_in is not None and not timedelta(0) < expires_in <= MAX_LIFETIME:
            raise ValidationError(
                "a token expires after more than 0 seconds and at most 10 years",
                errors={"expires": ["more than 0 seconds, at most 3650 days"]})
        token_id = secrets.token_hex(8)
        secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        props = {"id": token_id, "hash": hash_secret(secret), "role": role.label,
                 "description": description, "created_by": actor,
                 "expires_at": None if expires_in is None else now + expires_in}
        rows = self.graph.write_rows(QUERIES.create_token.text, props=props, root_id=root_id,
                                     now=now)
        if not rows:
            raise NotFound(f"no instance with id {root_id}", id=root_id)
        return NewToken(secret, _info(rows[0]))

    def list(self) -> builtins.list[TokenInfo]:
        """Every token, revoked and expired ones too, oldest first."""
        return [_info(row) for row in self.graph.read_rows(QUERIES.list_tokens.text)]

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token: from now on it authenticates nothing. NotFound for an unknown id."""
        rows = self.graph.write_rows(QUERIES.revoke_token.text, id=token_id,
                                     now=datetime.now(UTC))
        if not rows:
            raise NotFound(f"no token with id {token_id}", id=token_id)
        return _info(rows[0])

    def counts(self) -> tuple[int, int]:
        """(tokens in force, tokens in all)."""
        row = self.graph.read_rows(QUERIES.count_tokens.text)[0]
        return row["in_force"], row["total"]

    def authenticate(self, secret: str) -> Grant | None:
        """The grant of a token's secret; None when it is no token's, or the token is
        revoked or expired, or its root has been deleted."""
        match = _SECRET.fullmatch(secret)
        if match is None:
            return None
        rows = self.graph.read_rows(QUERIES.get_token.text, id=match[1])
        if not rows or not hmac.compare_digest(rows[0]["hash"], hash_secret(secret)):
            return None
        row = rows[0]
        if not row["in_force"] or row["root_id"] is None:  # a deleted root: void
            return None
        return Grant(Role.parse(row["role"]), row["root_id"], row["id"],
                     bool(row["root_global"]))

    def covers(self, grant: Grant, instance_id: str) -> bool:
        """Whether ``grant`` reaches ``instance_id``: its root is the instance or one of
        the instance's ancestors. False for an id that does not exist."""
        if grant.whole_graph:
            return True
        rows = self.graph.read_rows(QUERIES.instance_in_subtree.text, root=grant.root_id,
                                    id=instance_id)
        return bool(rows and rows[0]["inside"])

    def authorize(self, grant: Grant, role: Role, target: str | None) -> None:
        """Raise Forbidden unless ``grant`` holds ``role`` (or more) on ``target``: an
        instance id, or None for the whole graph. An id outside the token's subtree is
        refused alike whether or not it exists."""
        if grant.role >= role and (grant.whole_graph if target is None
                                   else self.covers(grant, target)):
            return
        raise forbidden(grant, role, target)


def forbidden(grant: Grant, role: Role, target: str | None) -> Forbidden:
    """The refusal of ``role`` on ``target`` (None: the whole graph) to ``grant``."""
    where = "the whole graph" if target is None else f"instance {target}"
    above = "" if target is None else " (or an instance above it)"
    has = ("the whole graph" if grant.root_id is None
           else f"the subtree of {grant.root_id}")
    return Forbidden(
        f"this needs the {role.label} role on {where}{above}; the token is "
        f"{grant.role.label} on {has}",
        required_role=role.label, required_root=target, token_role=grant.role.label,
        token_root=grant.root_id)


def _check_text(field: str, value: str | None) -> None:
    if value is not None and len(value) > MAX_TEXT_LENGTH:
        raise ValidationError(f"{field} is longer than {MAX_TEXT_LENGTH} characters",
                              errors={field: [f"at most {MAX_TEXT_LENGTH} characters"]})


def _info(row: dict[str, Any]) -> TokenInfo:
    return TokenInfo(row["id"], Role.parse(row["role"]), row["root_id"], row["root_name"],
                     row["root_scope"], row["description"], row["created_by"],
                     row["created_at"], row["expires_at"], row["revoked_at"])
