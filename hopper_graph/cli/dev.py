"""``reset``: empty a development database, guarded so that it empties nothing else."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import click

from hopper_graph.cli.base import (
    EXIT_USAGE,
    Backend,
    cli,
    json_option,
    print_json,
    resolve_settings,
)
from hopper_graph.cli.server import is_loopback
from hopper_graph.errors import CommandError
from hopper_graph.graph import Graph
from hopper_graph.local_neo4j import LocalNeo4j, default_cache_dir
from hopper_graph.queries import QUERIES

DEFAULT_BOLT_PORT = 7687
KINDS = ("instances", "events", "counters", "markers")


@cli.command("reset")
@click.option("-y", "--yes", is_flag=True,
              help="Do not ask for confirmation (required when stdin is not a terminal).")
@click.option("--force", is_flag=True,
              help="Reset even a database that is not one of the project's local servers.")
@click.option("--batch-size", default=10_000, show_default=True,
              type=click.IntRange(1, 1_000_000), help="Nodes deleted per transaction.")
@json_option
@click.pass_obj
def reset(backend: Backend, yes: bool, force: bool, batch_size: int, as_json: bool) -> None:
    """Delete every instance, audit event and counter; the schema stays. For development.

    Refuses a database that is not one of the project's running local servers
    (`hopper-graph neo4j start`, or a test server) unless --force, and asks before
    deleting unless --yes.
    """
    uri = resolve_settings().uri
    if not force and local_server_for(uri) is None:
        raise CommandError(f"refusing to reset {uri}: it is not one of this project's local "
                           "servers (see `hopper-graph neo4j status`); add --force to reset "
                           "it anyway")
    graph = Graph(backend.driver, backend.database)
    if not yes:
        _confirm(uri, graph.read_rows(QUERIES.count_hopper_nodes.text)[0])
    deleted = wipe(graph, batch_size)
    if as_json:
        print_json({"uri": uri, **deleted})
        return
    click.echo(f"deleted {deleted['instances']} instance(s), {deleted['events']} event(s) "
               f"and {deleted['counters']} counter(s) from {uri}; the schema stays")


def _confirm(uri: str, counts: dict[str, int]) -> None:
    if not sys.stdin.isatty():
        raise CommandError("reset asks for confirmation: run it on a terminal, or add --yes",
                           EXIT_USAGE)
    if not click.confirm(f"Delete {counts['instances']} instance(s), {counts['events']} "
                         f"event(s) and {counts['counters']} counter(s) from {uri}?",
                         err=True):
        raise CommandError("reset cancelled: nothing was deleted")


def wipe(graph: Graph, batch_size: int) -> dict[str, int]:
    """Delete the instance graph a batch per transaction; how many of each kind went."""
    totals: Counter[str] = Counter({kind: 0 for kind in KINDS})
    while True:
        row = graph.write_rows(QUERIES.reset_batch.text, limit=batch_size)[0]
        totals.update({kind: row[kind] for kind in KINDS})
        if row["done"] < batch_size:
            return dict(totals)


# -- which servers are the project's own --------------------------------------------------
def local_server_for(uri: str) -> LocalNeo4j | None:
    """The project's running local server ``uri`` points at, or None: the host must be a
    loopback address and the port the Bolt port of a server managed under the cache
    folder (``HOPPER_NEO4J_HOME``) whose process is alive. A host name other than
    ``localhost`` is never taken for local: it could point anywhere."""
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port or DEFAULT_BOLT_PORT
    except ValueError:
        return None
    if host is None or not is_loopback(host):
        return None
    return next((s for s in managed_servers() if s.bolt_port == port and s.is_running()),
                None)


def managed_servers(root: Path | None = None) -> Iterator[LocalNeo4j]:
    """Every server instance under the cache folder, with the Bolt port of its last
    start (read back from the neo4j.conf that start wrote)."""
    root = root or default_cache_dir()
    for conf in sorted(root.glob("*/conf/neo4j.conf")):
        port = _bolt_port(conf)
        if port is not None:
            yield LocalNeo4j(name=conf.parent.parent.name, bolt_port=port, cache_dir=root)


def _bolt_port(conf: Path) -> int | None:
    try:
        lines = conf.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "server.bolt.listen_address":
            port = value.strip().rpartition(":")[2]
            return int(port) if port.isdigit() else None
    return None
