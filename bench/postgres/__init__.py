"""The benchmark's PostgreSQL peer: the obvious SQL alternative doing the same work.

A throwaway PostgreSQL 15 cluster (``cluster.py``) on a unix socket in a temporary folder,
with an adjacency-list ``instances`` table and an ``events`` table (``schema.sql``),
loaded by COPY (``peer.py``). ``writes.py`` holds the write workloads, ``reads.py`` the
read workloads. Where PostgreSQL cannot run, ``Peer.start()`` raises
:class:`PostgresUnavailable` with the reason and the benchmark runs without a peer.
"""

from bench.postgres.cluster import Cluster, PostgresUnavailable
from bench.postgres.peer import Peer

__all__ = ["Cluster", "Peer", "PostgresUnavailable"]
