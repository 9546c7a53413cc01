"""Connection settings and the one neo4j Driver a process should hold.

Settings come from the environment with one prefix (``HOPPER_NEO4J_URI``, ``_USER``,
``_PASSWORD``, ``_DATABASE``, ``_TIMEOUT``). Both ``bolt://`` (one server) and ``neo4j://``
(routing: clusters, Aura) URIs work, because the repository runs every read as a read
transaction and every write as a write transaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from neo4j import Driver, GraphDatabase


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    user: str | None = None
    password: str | None = None
    database: str | None = None
    timeout: float = 10.0
    """Seconds to wait for a connection, and to retry a transaction, before giving up."""

    @classmethod
    def from_env(cls, default_uri: str | None = None) -> Neo4jSettings | None:
        """Settings from ``HOPPER_NEO4J_*``; None when no URI is configured or given."""
        uri = os.environ.get("HOPPER_NEO4J_URI") or default_uri
        if not uri:
            return None
        return cls(
            uri=uri,
            user=os.environ.get("HOPPER_NEO4J_USER") or None,
            password=os.environ.get("HOPPER_NEO4J_PASSWORD") or None,
            database=os.environ.get("HOPPER_NEO4J_DATABASE") or None,
            timeout=float(os.environ.get("HOPPER_NEO4J_TIMEOUT", "10")),
        )


def connect(settings: Neo4jSettings) -> Driver:
    """A driver for ``settings``; the caller owns it and closes it."""
    auth = (settings.user, settings.password or "") if settings.user else None
    return GraphDatabase.driver(
        settings.uri,
        auth=auth,
        connection_timeout=settings.timeout,
        connection_acquisition_timeout=settings.timeout,
        max_transaction_retry_time=settings.timeout,
        # The library's queries are checked against the server in its own tests; server
        # notifications (e.g. "label does not exist" on an empty database) are noise here.
        notifications_min_severity="OFF",
    )
