"""Commands about the database and the server: ``schema apply``, ``query list|show``,
``neo4j start|stop|status`` and ``serve``."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import signal
from typing import Any

import click

from hopper_graph import __version__, feed
from hopper_graph.checker import nfc_twins
from hopper_graph.cli.base import (
    EXIT_NOT_RUNNING,
    EXIT_USAGE,
    Backend,
    cli,
    json_option,
    print_json,
)
from hopper_graph.cli.observe import configure_logging, gunicorn_options
from hopper_graph.cli.output import console
from hopper_graph.errors import CommandError
from hopper_graph.graph import Neo4jSettings, connect, translate_errors
from hopper_graph.local_neo4j import LocalNeo4j
from hopper_graph.queries import QUERIES
from hopper_graph.schema import apply_schema, schema_version


# -- schema -------------------------------------------------------------------------------
@cli.group()
def schema() -> None:
    """The database schema (constraints and indexes)."""


@schema.command("apply")
@json_option
@click.pass_obj
def schema_apply(backend: Backend, as_json: bool) -> None:
    """Apply the constraints and indexes not yet applied (idempotent), then report names
    stored in two Unicode forms of one NFC text (written before names were normalised:
    rename all but one of each)."""
    with translate_errors():
        applied = apply_schema(backend.driver, backend.database)
        version = schema_version(backend.driver, backend.database)
        twins = nfc_twins(backend.driver, backend.database)
    if as_json:
        print_json({"applied": [{"version": m.version, "name": m.name} for m in applied],
                    "version": version, "nfc_twins": [t.to_dict() for t in twins]})
        return
    out = console()
    for migration in applied:
        out.print(f"applied migration {migration.version}: {migration.name}")
    out.print(f"schema at version {version}" + ("" if applied else " (up to date)"))
    for twin in twins:
        out.print(f"warning: {twin.message}")


# -- named queries ------------------------------------------------------------------------
@cli.group("query")
def query_group() -> None:
    """The named Cypher queries, as the server runs them (for Neo4j Browser)."""


@query_group.command("list")
@json_option
def query_list(as_json: bool) -> None:
    """Every named query: its name, file, parameters and what it does."""
    queries = sorted(QUERIES, key=lambda q: q.name)
    if as_json:
        print_json([{"name": q.name, "file": q.source, "params": sorted(q.params),
                     "doc": q.doc} for q in queries])
        return
    for q in queries:
        click.echo(f"{q.name}\t{q.source}\t{','.join(sorted(q.params)) or '-'}\t{q.doc}")


@query_group.command("show")
@click.argument("name")
def query_show(name: str) -> None:
    """Print query NAME with its shared fragments spliced in, after a `:param` line for
    each parameter: paste it into Neo4j Browser and fill in the values."""
    query = next((q for q in QUERIES if q.name == name), None)
    if query is None:
        raise click.BadParameter(f"no named query {name!r}; `hopper-graph query list` "
                                 "lists them", param_hint="NAME")
    click.echo(f"// {query.name} ({query.source}): {query.doc}")
    for param in sorted(query.params):
        click.echo(f":param {param} => null")
    click.echo(query.text)


# -- the local server ---------------------------------------------------------------------
@cli.group("neo4j")
def neo4j_group() -> None:
    """The local Neo4j development server (HOPPER_NEO4J_BOLT_PORT, _HTTP_PORT, _HOME)."""


def _server_status(server: LocalNeo4j) -> dict[str, Any]:
    pid = server.pid()
    return {"name": server.name, "running": server.is_running(), "pid": pid,
            "uri": server.uri, "browser_url": server.browser_url,
            "data_dir": str(server.home / "data")}


def _report_server(server: LocalNeo4j, as_json: bool) -> None:
    if as_json:
        print_json(_server_status(server))
    else:
        # one line, however narrow the terminal: a wrapped Browser URL cannot be clicked
        # or copied, and `| cat` (no terminal) would wrap it at 80 columns
        console().print(server.status(), soft_wrap=True)


@neo4j_group.command("start")
@json_option
def neo4j_start(as_json: bool) -> None:
    """Start the local server (fetching it once with Maven) and wait until it answers."""
    server = LocalNeo4j.from_env()
    server.start()
    _report_server(server, as_json)


@neo4j_group.command("stop")
@json_option
def neo4j_stop(as_json: bool) -> None:
    """Stop the local server; its data stays."""
    server = LocalNeo4j.from_env()
    server.stop()
    _report_server(server, as_json)


@neo4j_group.command("status")
@json_option
@click.pass_context
def neo4j_status(ctx: click.Context, as_json: bool) -> None:
    """Show whether the local server runs; exit code 3 when it does not."""
    server = LocalNeo4j.from_env()
    _report_server(server, as_json)
    if server.pid() is None:
        ctx.exit(EXIT_NOT_RUNNING)


# -- serve --------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


APP = "api:create_app()"
"""The application ``serve`` runs, named as on gunicorn's command line: each worker imports
it, so the library never imports the API package (which imports the library)."""


def _gunicorn_app(app: str, options: dict[str, Any]) -> Any:
    """A gunicorn application that serves ``app`` (``module:name`` or
    ``module:factory()``) with ``options`` and nothing read from the command line or a
    config file."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.util import import_app

    class HopperApplication(BaseApplication):
        def __init__(self) -> None:
            self.options = options
            self.app = app
            super().__init__()

        def load_config(self) -> None:
            for key, value in self.options.items():
                if key in self.cfg.settings:  # settings newer than the installed gunicorn
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return import_app(self.app)

    return HopperApplication()


DEFAULT_WORKERS = 2
"""Worker processes ``serve`` runs by default: one per core of a small machine."""
DEFAULT_THREADS = 16
"""Threads per worker: enough for the writes that arrive together to share a batch (group
commit); docs/api.md has the measurements behind the number."""
WORKER_CLASS = "hopper_graph.cli.worker.HopperWorker"
"""gunicorn's gthread worker, with each request read whole before a thread runs it (slow
clients hold no thread) and gunicorn's own errors as problem+json (hopper_graph/cli/worker.py)."""
KEEPALIVE_SECONDS = 75
"""How long an idle kept-alive connection stays open: longer than the clients and load
balancers that reuse one (httpx 5 s, AWS ALB and GCP 60 s), so the client is always the
one that closes it, never the server just as a request is on its way (gunicorn's default
of 2 s did that). 75 s is nginx's default, for the same reason."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs HOPPER_API_TOKEN.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True,
              type=click.IntRange(min=1),
              help="Worker processes, each with its own Neo4j driver.")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True,
              type=click.IntRange(min=1),
              help="Threads per worker.")
@json_option
def serve(host: str, port: int, workers: int, threads: int, as_json: bool) -> None:
    """Run the REST API under gunicorn.

    Without HOPPER_NEO4J_URI, starts the local Neo4j server and uses it. Applies the
    schema, then serves until interrupted.
    """
    token = os.environ.get("HOPPER_API_TOKEN")
    if not token and not is_loopback(host):
        raise CommandError(
            f"refusing to serve on {host} without HOPPER_API_TOKEN: anyone who can reach it "
            "could change the hierarchy; set HOPPER_API_TOKEN, or listen on 127.0.0.1",
            EXIT_USAGE)
    local = None
    if not os.environ.get("HOPPER_NEO4J_URI"):
        local = LocalNeo4j.from_env()
        local.start()
        os.environ["HOPPER_NEO4J_URI"] = local.uri
    settings = Neo4jSettings.from_env()
    assert settings is not None
    driver = connect(settings)
    try:
        with translate_errors():
            apply_schema(driver, settings.database)
    finally:
        driver.close()
    if importlib.util.find_spec(APP.split(":")[0]) is None:
        raise CommandError("the REST API package `api` is not installed")
    # The API's and the driver's warnings belong in the server's log (stderr), in
    # HOPPER_LOG_FORMAT, each line with its request's id.
    configure_logging()
    bind = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    browser = local.browser_url if local else None  # another server: its own Browser
    summary = {"bind": bind, "neo4j_uri": settings.uri, "workers": workers,
               "threads": threads, "auth": bool(token), "browser_url": browser}
    if as_json:
        print_json(summary)
    else:
        click.echo(f"hopper-graph {__version__}: serving the API on http://{bind} "
                   f"(Neo4j {settings.uri}; auth {'on' if token else 'off'})", err=True)
        if browser:
            click.echo(f"Neo4j Browser: {browser}", err=True)
    _gunicorn_app(APP, {
        "bind": bind, "workers": workers, "threads": threads, "worker_class": WORKER_CLASS,
        "keepalive": KEEPALIVE_SECONDS,
        "accesslog": "-", "errorlog": "-", "proc_name": "hopper-graph",
        # gunicorn >= 25.1 opens a control socket at one default path per user: a second
        # `serve` on the host would fight over it, and nothing here uses it.
        "control_socket_disable": True,
        "post_worker_init": end_streams_on_stop, "worker_int": end_streams,
        **gunicorn_options(),
    }).run()


def end_streams(worker: Any = None) -> None:
    """End the worker's open event streams (``feed.close_all``): a stop waits for every
    request to finish, and a stream never does (it held Ctrl-C up for 30 s)."""
    feed.close_all(for_good=True)


def end_streams_on_stop(worker: Any) -> None:
    """Have a graceful stop (SIGTERM, which gunicorn only notes) end the streams too."""
    noted = signal.getsignal(signal.SIGTERM)

    def on_stop(signum: int, frame: Any) -> None:
        feed.close_all(for_good=True)
        if callable(noted):
            noted(signum, frame)
    signal.signal(signal.SIGTERM, on_stop)


