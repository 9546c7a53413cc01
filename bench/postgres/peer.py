"""The peer itself: a throwaway cluster with the schema, connections to it, and loading.

Loading is COPY of the rows ``bench.datasets.plain_rows`` makes from the same specs our
side imports, so both sides hold the same hierarchy; the write workloads (``writes.py``)
and the read workloads (``reads.py``) run over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.postgres.cluster import Cluster, PostgresUnavailable

try:
    import psycopg
    from psycopg.types.string import TextLoader
except ImportError:  # pragma: no cover - a checkout installed without the dev extras
    psycopg = None  # type: ignore[assignment]

SCHEMA = Path(__file__).with_name("schema.sql")

INSTANCE_COLUMNS = ("id", "name", "scope", "status", "instance_type", "parent_id",
                    "project_id", "config", "config_set", "metadata", "labels", "version",
                    "depth")
"""What COPY takes of an instance's props; ``copy`` adds created_at and updated_at."""

EVENT_COLUMNS = ("id", "instance_id", "event", "to_status")


class Peer:
    """A started cluster with the benchmark's schema; ``conn`` is for one-thread work."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.conn = self.connect()
        self.version = "PostgreSQL " + self.conn.execute("SHOW server_version").fetchone()[0]
        self.conn.execute(SCHEMA.read_text())

    @classmethod
    def start(cls) -> Peer:
        """Start a cluster and create the schema, or raise PostgresUnavailable saying why."""
        if psycopg is None:
            raise PostgresUnavailable("psycopg is not installed "
                                      "(pip install 'psycopg[binary]>=3.2', in the dev extras)")
        cluster = Cluster()
        cluster.start()
        try:
            return cls(cluster)
        except BaseException:
            cluster.stop()
            raise

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection in autocommit mode: work that must be atomic says so with
        ``conn.transaction()``, as the workloads do.

        ``json``/``jsonb`` values come back as their text, as ours keep ``config`` and
        ``metadata`` as text until read: decoding every config snapshot was more than half
        of the peer's time reading 5,000 ancestors (270 against 114 ms), work our side
        does not do.
        """
        conn = psycopg.connect(**self.cluster.conninfo, autocommit=True)
        for name in ("json", "jsonb"):
            conn.adapters.register_loader(name, TextLoader)
        return conn

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.cluster.stop()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        """Empty both tables (between workloads, as our side wipes its graph)."""
        self.conn.execute("TRUNCATE events, instances RESTART IDENTITY")

    def copy(self, rows: Sequence[dict[str, Any]]) -> int:
        """COPY ``rows`` (``datasets.plain_rows`` shape: props and event) into both
        tables in one transaction; parents come before their children."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            _copy(cur, "instances", (*INSTANCE_COLUMNS, "created_at", "updated_at"),
                  _stamped(r["props"] for r in rows))
            _copy(cur, "events", EVENT_COLUMNS, (r["event"] for r in rows))
        return len(rows)

    def analyze(self) -> None:
        """Refresh the planner's statistics after a load, as one would after a COPY."""
        self.conn.execute("ANALYZE instances, events")

    def set_status(self, ids: Iterable[str], status: str) -> None:
        """Setup, not measured: put ``ids`` in ``status`` directly."""
        self.conn.execute("UPDATE instances SET status = %s WHERE id = ANY(%s::uuid[])",
                          (status, list(ids)))


def _stamped(props: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each row with its own created_at, a microsecond after the one before: ``now()`` is
    the same for a whole transaction, and pages in creation order (as ours are) need the
    load order, as our import gives each instance its own timestamp."""
    start = datetime.now(UTC)
    for index, row in enumerate(props):
        at = start + timedelta(microseconds=index)
        yield {**row, "created_at": at, "updated_at": at}


def _copy(cur: psycopg.Cursor[Any], table: str, columns: Sequence[str],
          rows: Iterable[dict[str, Any]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row.get(column) for column in columns])
