"""``hopper-graph``: the library on the command line, for operators and scripts.

Commands: ``schema apply``; ``neo4j start|stop|status`` (the local development server);
``serve`` (the REST API under gunicorn); ``instance create|get|list|tree|start|stop|pause|
resume|archive|delete|history|health``; ``export FILE`` / ``import FILE``; ``check``;
``purge``.
Every command takes ``--json`` for machine-readable output. See docs/cli.md.

The connection comes from ``HOPPER_NEO4J_*`` (``Neo4jSettings.from_env``); when
``HOPPER_NEO4J_URI`` is unset, the local server is used if it runs. An error is one line on
stderr, ``error: <message>``, and exit code 2 for invalid input or usage, 1 for anything
else (``neo4j status`` exits 3 when the server is stopped, ``check`` 1 on any violation).
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, cast

import click
import yaml
from neo4j import Driver
from neo4j.exceptions import DriverError, Neo4jError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from hopper_graph import __version__
from hopper_graph import purge as purging
from hopper_graph.checker import check_invariants
from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType
from hopper_graph.errors import (
    DatabaseUnavailable,
    HopperGraphError,
    NotFound,
    ValidationError,
)
from hopper_graph.graph import Neo4jSettings, connect, translate_errors
from hopper_graph.lifecycle import EVENTS, TransitionResult
from hopper_graph.local_neo4j import LocalNeo4j, LocalNeo4jError
from hopper_graph.manager import HealthReport, InstanceManager
from hopper_graph.models import FlatTreeRow, HopperInstance, InstanceEvent
from hopper_graph.purge import PurgeItem, PurgeReport
from hopper_graph.queries import QUERIES
from hopper_graph.rules import Expected
from hopper_graph.schema import apply_schema, schema_version
from hopper_graph.transfer import (
    export_graph,
    file_format,
    import_graph,
    read_export,
    write_export,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
STATUS_STYLES = {
    InstanceStatus.CREATED: "cyan",
    InstanceStatus.ACTIVE: "green",
    InstanceStatus.PAUSED: "yellow",
    InstanceStatus.STOPPED: "red",
    InstanceStatus.ARCHIVED: "bright_black",
}
_PAST = {"start": "started", "stop": "stopped", "pause": "paused", "resume": "resumed",
         "archive": "archived"}
_GUIDE_WIDTH = 4  # columns rich's Tree indents each level by
_SHOWN_CHANGES = 20


class CommandError(Exception):
    """A command cannot go on; the message is shown as the one error line."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- connection ---------------------------------------------------------------------------
class Backend:
    """The connection of one command: opened on first use, closed when the command ends."""

    def __init__(self) -> None:
        self.settings: Neo4jSettings | None = None
        self._driver: Driver | None = None

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            self.settings = resolve_settings()
            self._driver = connect(self.settings)
        return self._driver

    @property
    def database(self) -> str | None:
        _ = self.driver
        assert self.settings is not None
        return self.settings.database

    def manager(self) -> InstanceManager:
        return InstanceManager(self.driver, self.database)

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None


def resolve_settings() -> Neo4jSettings:
    """``HOPPER_NEO4J_*``; without a URI, the local server's if it runs."""
    settings = Neo4jSettings.from_env()
    if settings is not None:
        return settings
    local = LocalNeo4j.from_env()
    if local.is_running():
        settings = Neo4jSettings.from_env(default_uri=local.uri)
        assert settings is not None
        return settings
    raise CommandError("no Neo4j to talk to: set HOPPER_NEO4J_URI, or start the local server "
                       "with `hopper-graph neo4j start`")


# -- error handling -----------------------------------------------------------------------
_HELP_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if cls is not None)

# Help as click shows it; a closed pipe (`| head`) as click handles it.
_PASS_THROUGH: tuple[type[BaseException], ...] = (*_HELP_ERRORS, BrokenPipeError)


class OneLineUsageError(click.ClickException):
    """A usage error (unknown command, bad option value) shown as one ``error:`` line."""

    exit_code = EXIT_USAGE

    def __init__(self, error: click.UsageError) -> None:
        message = _one_line(error.format_message())
        if error.ctx is not None:
            message += f" (see '{error.ctx.command_path} --help')"
        super().__init__(message)

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class HopperGroup(click.Group):
    """The root group: turns every expected failure into one ``error:`` line on stderr."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _HELP_ERRORS:
            raise  # a group called bare: its help, as click shows it
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise  # help as click shows it; a closed pipe (`| head`) as click handles it
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from None
        except (HopperGraphError, CommandError, LocalNeo4jError, DriverError, Neo4jError,
                OSError) as exc:
            backend = ctx.obj if isinstance(ctx.obj, Backend) else None
            code, message = describe_error(exc, backend)
            click.echo(f"error: {message}", err=True)
            ctx.exit(code)


def describe_error(exc: BaseException, backend: Backend | None = None) -> tuple[int, str]:
    """The exit code and the one-line message for an error."""
    if isinstance(exc, CommandError):
        return exc.exit_code, _one_line(str(exc))
    if isinstance(exc, HopperGraphError):
        message = exc.message
        known = [m for msgs in exc.errors.values() for m in msgs]
        if known and not any(str(m) in message for m in known):
            details = "; ".join(f"{path}: {', '.join(map(str, msgs))}"
                                for path, msgs in list(exc.errors.items())[:3])
            message = f"{message} ({details})"
        if isinstance(exc, DatabaseUnavailable) and backend and backend.settings:
            message = f"{message} (at {backend.settings.uri})"
        code = EXIT_USAGE if isinstance(exc, ValidationError) else EXIT_ERROR
        return code, _one_line(message)
    if isinstance(exc, Neo4jError):
        return EXIT_ERROR, _one_line(f"Neo4j: {exc.message or type(exc).__name__}")
    if isinstance(exc, DriverError):
        return EXIT_ERROR, _one_line(f"Neo4j driver: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return EXIT_ERROR, _one_line(f"{exc.strerror}{where}")
    return EXIT_ERROR, _one_line(str(exc) or type(exc).__name__)


def _one_line(message: str) -> str:
    return " ".join(message.split())


# -- output helpers -----------------------------------------------------------------------
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON instead of text.")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def console() -> Console:
    """A console on the current stdout; markup off, so names print verbatim."""
    return Console(markup=False, highlight=False, emoji=False)


def status_text(status: InstanceStatus | str | None) -> Text:
    if status is None:
        return Text("-", style="dim")
    value = InstanceStatus(status)
    return Text(value.value, style=STATUS_STYLES[value])


def instance_label(instance: HopperInstance) -> Text:
    return Text.assemble((instance.name, "bold"), " ", (instance.scope.value, "dim"), " ",
                         status_text(instance.status), " ", (instance.id, "dim"))


def default_actor() -> str | None:
    """``HOPPER_ACTOR``, else ``cli:<login name>``: who the audit trail names."""
    if actor := os.environ.get("HOPPER_ACTOR"):
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return None


def resolve_ref(manager: InstanceManager, ref: str) -> str:
    """An instance id from an id or ``SCOPE:NAME`` (e.g. ``GLOBAL:global``)."""
    scope, sep, name = ref.partition(":")
    if sep and scope.upper() in HopperScope.__members__:
        return manager.get_by_scope_and_name(scope.upper(), name).id
    return ref


def parse_document(value: str | None, option: str) -> dict[str, Any] | None:
    """A JSON object given inline, or ``@FILE`` holding JSON or YAML."""
    if value is None:
        return None
    field = option.lstrip("-")
    text, kind = value, "JSON"
    if value.startswith("@"):
        path = Path(value[1:])
        text = path.read_text(encoding="utf-8")
        kind = "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"
    try:
        data = yaml.safe_load(text) if kind == "YAML" else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        detail = _one_line(str(exc))
        raise ValidationError(f"{option} is not valid {kind}: {detail}",
                              errors={field: [f"not valid {kind}"]}) from None
    if not isinstance(data, dict):
        raise ValidationError(f"{option} must be an object (a map), not "
                              f"{type(data).__name__}", errors={field: ["must be an object"]})
    return data


def transition_dict(result: TransitionResult) -> dict[str, Any]:
    return {"id": result.id, "event": result.event,
            "previous_status": result.previous_status.value, "status": result.status.value,
            "at": result.at.isoformat(),
            "cascaded": [{"id": c.id, "event": c.event,
                          "previous_status": c.previous_status.value,
                          "status": c.status.value, "cause": c.cause}
                         for c in result.cascaded],
            "instance": result.instance.to_dict()}


def health_dict(report: HealthReport) -> dict[str, Any]:
    return {"id": report.id, "status": report.status,
            "instance_status": report.instance_status.value,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail}
                       for c in report.checks],
            "subtree": report.subtree, "unhealthy": report.unhealthy}


# -- the root group -----------------------------------------------------------------------
@click.group(cls=HopperGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hopper-graph")
@click.option("-v", "--verbose", is_flag=True, help="Log what the library and driver do.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """hopper-graph: the Hopper instance hierarchy in Neo4j.

    Connects with HOPPER_NEO4J_URI (and _USER, _PASSWORD, _DATABASE, _TIMEOUT); without
    it, with the local server started by `hopper-graph neo4j start`.
    """
    configure_logging(verbose)
    backend = Backend()
    ctx.obj = backend
    ctx.call_on_close(backend.close)


def configure_logging(verbose: bool) -> None:
    """Quiet by default: the driver's retry warnings would break the one-line errors."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return
    driver_log = logging.getLogger("neo4j")
    if not any(isinstance(h, logging.NullHandler) for h in driver_log.handlers):
        # Only stops Python's last-resort stderr output; configured handlers still get it.
        driver_log.addHandler(logging.NullHandler())


def main(argv: list[str] | None = None) -> None:
    """The console script."""
    cli.main(args=argv, prog_name="hopper-graph")


# -- schema -------------------------------------------------------------------------------
@cli.group()
def schema() -> None:
    """The database schema (constraints and indexes)."""


@schema.command("apply")
@json_option
@click.pass_obj
def schema_apply(backend: Backend, as_json: bool) -> None:
    """Apply the constraints and indexes not yet applied (idempotent)."""
    with translate_errors():
        applied = apply_schema(backend.driver, backend.database)
        version = schema_version(backend.driver, backend.database)
    if as_json:
        print_json({"applied": [{"version": m.version, "name": m.name} for m in applied],
                    "version": version})
        return
    out = console()
    for migration in applied:
        out.print(f"applied migration {migration.version}: {migration.name}")
    out.print(f"schema at version {version}" + ("" if applied else " (up to date)"))


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
        console().print(server.status())


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


def _gunicorn_app(factory: Callable[[], Any], options: dict[str, Any]) -> Any:
    """A gunicorn application that serves ``factory()`` with ``options`` and nothing read
    from the command line or a config file."""
    from gunicorn.app.base import BaseApplication

    class HopperApplication(BaseApplication):
        def __init__(self) -> None:
            self.options = options
            self.factory = factory
            super().__init__()

        def load_config(self) -> None:
            for key, value in self.options.items():
                if key in self.cfg.settings:  # settings newer than the installed gunicorn
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return self.factory()

    return HopperApplication()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs HOPPER_API_TOKEN.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Worker processes, each with its own Neo4j driver.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(min=1),
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
    try:
        import api
    except ImportError as exc:
        raise CommandError(f"the REST API package `api` cannot be imported: {exc}") from None
    # The API's and the driver's warnings belong in the server's log (stderr).
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bind = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    summary = {"bind": bind, "neo4j_uri": settings.uri, "workers": workers,
               "threads": threads, "auth": bool(token)}
    if as_json:
        print_json(summary)
    else:
        click.echo(f"hopper-graph {__version__}: serving the API on http://{bind} "
                   f"(Neo4j {settings.uri}; auth {'on' if token else 'off'})", err=True)
    _gunicorn_app(api.create_app, {
        "bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
        "accesslog": "-", "errorlog": "-", "proc_name": "hopper-graph",
        # gunicorn >= 25.1 opens a control socket at one default path per user: a second
        # `serve` on the host would fight over it, and nothing here uses it.
        "control_socket_disable": True,
    }).run()


# -- instances ----------------------------------------------------------------------------
@cli.group()
def instance() -> None:
    """Create, read and change instances.

    An instance is named by its id or by SCOPE:NAME (e.g. GLOBAL:global).
    """


_SCOPES = click.Choice([s.value for s in HopperScope], case_sensitive=False)
_STATUSES = click.Choice([s.value for s in InstanceStatus], case_sensitive=False)
_TYPES = click.Choice([t.value for t in InstanceType], case_sensitive=False)


@instance.command("create")
@click.option("--name", required=True, help="Unique within the scope.")
@click.option("--scope", required=True, type=_SCOPES)
@click.option("--parent", help="The parent (id or SCOPE:NAME); none for GLOBAL.")
@click.option("--project-id", help="Required for a PROJECT; an ORCHESTRATION inherits it.")
@click.option("--type", "instance_type", type=_TYPES,
              help="Default: SINGLETON for GLOBAL, PERSISTENT for PROJECT, EPHEMERAL for "
                   "ORCHESTRATION.")
@click.option("--config", help="Config overrides: a JSON object, or @FILE (JSON or YAML).")
@click.option("--metadata", help="Free metadata: a JSON object, or @FILE (JSON or YAML).")
@click.option("--id", "instance_id", help="A UUID to use instead of a generated one.")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def instance_create(backend: Backend, name: str, scope: str, parent: str | None,
                    project_id: str | None, instance_type: str | None, config: str | None,
                    metadata: str | None, instance_id: str | None, actor: str | None,
                    as_json: bool) -> None:
    """Create an instance."""
    config_doc = parse_document(config, "--config")
    metadata_doc = parse_document(metadata, "--metadata")
    manager = backend.manager()
    parent_id = resolve_ref(manager, parent) if parent else None
    created = manager.create(name=name, scope=scope, parent_id=parent_id,
                             project_id=project_id, instance_type=instance_type,
                             config=config_doc, metadata=metadata_doc, id=instance_id,
                             actor=actor)
    if as_json:
        print_json(created.to_dict())
    else:
        console().print(Text.assemble("created ", instance_label(created)))


@instance.command("get")
@click.argument("ref")
@json_option
@click.pass_obj
def instance_get(backend: Backend, ref: str, as_json: bool) -> None:
    """Show one instance."""
    manager = backend.manager()
    found = manager.get(resolve_ref(manager, ref))
    if as_json:
        print_json(found.to_dict())
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    data = found.to_dict()
    for key, value in data.items():
        if key == "status":
            grid.add_row(key, status_text(found.status))
        elif isinstance(value, dict):
            grid.add_row(key, Text(json.dumps(value, indent=2, ensure_ascii=False)))
        else:
            grid.add_row(key, Text("-" if value is None else str(value)))
    console().print(grid)


@instance.command("list")
@click.option("--scope", type=_SCOPES)
@click.option("--status", type=_STATUSES)
@click.option("--parent", help="Only the children of this instance (id or SCOPE:NAME).")
@click.option("--project-id")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--after", metavar="CURSOR", help="Page by cursor: the `next` a page printed "
              "('' for the first page); each page then costs its own rows, and no total.")
@json_option
@click.pass_obj
def instance_list(backend: Backend, scope: str | None, status: str | None,
                  parent: str | None, project_id: str | None, limit: int, offset: int,
                  after: str | None, as_json: bool) -> None:
    """List instances in creation order, filtered and a page at a time."""
    manager = backend.manager()
    parent_id = resolve_ref(manager, parent) if parent else None
    page = manager.list(scope=scope, status=status, parent_id=parent_id,
                        project_id=project_id, offset=offset, limit=limit, after=after)
    if as_json:
        print_json({"items": [i.to_dict() for i in page.items], "total": page.total,
                    "offset": page.offset, "limit": page.limit, "next": page.next})
        return
    table = Table(box=None, pad_edge=False)
    for column in ("name", "scope", "status", "project"):
        table.add_column(column, overflow="fold")
    table.add_column("id", no_wrap=True, min_width=36)
    for item in page.items:
        table.add_row(item.name, item.scope.value, status_text(item.status),
                      item.project_id or "-", item.id)
    out = console()
    out.print(table)
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    out.print(f"{shown} of {page.total}" if page.total is not None else
              f"{len(page.items)} shown", style="dim")
    if page.next is not None:
        out.print(f"next page: --after {page.next}", style="dim")


@instance.command("tree")
@click.argument("ref", required=False)
@click.option("--max-depth", type=click.IntRange(min=0),
              help="Levels below the root to show (default: all).")
@json_option
@click.pass_obj
def instance_tree(backend: Backend, ref: str | None, max_depth: int | None,
                  as_json: bool) -> None:
    """Draw the hierarchy below an instance (default: the GLOBAL one).

    With --json, the flat form: every node with its parent_id and its level below the
    root, parents first (deep trees never nest).
    """
    manager = backend.manager()
    if ref:
        root_id = resolve_ref(manager, ref)
    else:
        root = manager.get_global_instance()
        if root is None:
            raise NotFound("there is no GLOBAL instance; name the root to draw")
        root_id = root.id
    rows = cast("list[FlatTreeRow]", manager.get_flat_tree(root_id, max_depth))
    if as_json:
        print_json({"root_id": root_id, "max_depth": max_depth,
                    "items": [{**row.instance.to_dict(), "level": row.depth} for row in rows]})
        return
    # Rows come parents first, so each node's parent is drawn before it: no recursion.
    nodes: dict[str, Tree] = {}
    for row in rows:
        label = instance_label(row.instance)
        parent = nodes.get(row.parent_id) if row.parent_id else None
        nodes[row.instance.id] = parent.add(label) if parent else Tree(label)
    out = console()
    out.print(nodes[root_id])
    counts = Counter(row.instance.status for row in rows)
    summary = ", ".join(f"{counts[s]} {s.value}" for s in InstanceStatus if counts[s])
    levels = max(row.depth for row in rows)
    out.print(f"{len(rows)} instance(s) in {levels + 1} level(s): {summary}", style="dim")
    if _GUIDE_WIDTH * levels + 20 > out.width:
        click.echo(f"note: {levels + 1} levels do not fit in {out.width} columns; deep labels "
                   "are cut off (use --max-depth, a wider COLUMNS, or --json)", err=True)


def _lifecycle_command(event: str) -> click.Command:
    @click.argument("ref")
    @click.option("--reason", help="Why: kept in the audit trail.")
    @click.option("--actor", default=default_actor, help="Who the audit trail names.")
    @click.option("--expected-version", type=int,
                  help="Refuse unless the instance is at this version.")
    @json_option
    @click.pass_obj
    def command(backend: Backend, ref: str, reason: str | None, actor: str | None,
                expected_version: Expected, as_json: bool) -> None:
        manager = backend.manager()
        result = manager.transition(resolve_ref(manager, ref), event, reason=reason,
                                    actor=actor, expected_version=expected_version)
        if as_json:
            print_json(transition_dict(result))
            return
        out = console()
        out.print(Text.assemble(f"{_PAST[event]} ", (result.instance.name, "bold"),
                                f" ({result.id}): ", status_text(result.previous_status),
                                " -> ", status_text(result.status)))
        for change in result.cascaded[:_SHOWN_CHANGES]:
            out.print(Text.assemble(f"  {change.event} {change.id}: ",
                                    status_text(change.previous_status), " -> ",
                                    status_text(change.status)))
        if len(result.cascaded) > _SHOWN_CHANGES:
            out.print(f"  ... and {len(result.cascaded) - _SHOWN_CHANGES} more cascaded "
                      "change(s) (--json lists them all)", style="dim")

    command.__doc__ = {
        "start": "Start an instance (CREATED or STOPPED -> ACTIVE; its parent must be ACTIVE).",
        "stop": "Stop an instance and everything running below it.",
        "pause": "Pause an ACTIVE instance and the ACTIVE instances below it.",
        "resume": "Resume a PAUSED instance and what its pause paused below it.",
        "archive": "Archive an instance and its subtree (nothing in it may run).",
    }[event]
    return click.command(event)(command)


for _event in EVENTS:
    instance.add_command(_lifecycle_command(_event))


@instance.command("delete")
@click.argument("ref")
@click.option("--force", is_flag=True, help="Stop what runs in the subtree first.")
@click.option("--reason", help="Why: kept in the audit trail.")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@click.option("--expected-version", type=int,
              help="Refuse unless the instance is at this version.")
@json_option
@click.pass_obj
def instance_delete(backend: Backend, ref: str, force: bool, reason: str | None,
                    actor: str | None, expected_version: Expected, as_json: bool) -> None:
    """Delete an instance and its subtree; their history stays."""
    manager = backend.manager()
    result = manager.delete(resolve_ref(manager, ref), force=force, actor=actor,
                            reason=reason, expected_version=expected_version)
    if as_json:
        print_json({"id": result.id, "deleted": result.deleted,
                    "stopped": [{"id": c.id, "previous_status": c.previous_status.value,
                                 "status": c.status.value} for c in result.stopped]})
        return
    out = console()
    out.print(f"deleted {len(result.deleted)} instance(s) (the subtree of {result.id})")
    if result.stopped:
        out.print(f"stopped {len(result.stopped)} running instance(s) first", style="dim")


@instance.command("history")
@click.argument("ref")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0))
@json_option
@click.pass_obj
def instance_history(backend: Backend, ref: str, limit: int | None, offset: int,
                     as_json: bool) -> None:
    """Show an instance's audit trail, oldest first (also after it was deleted)."""
    manager = backend.manager()
    events = cast("list[InstanceEvent]",
                  manager.history(resolve_ref(manager, ref), offset=offset, limit=limit))
    if as_json:
        print_json({"items": [e.to_dict() for e in events], "offset": offset, "limit": limit})
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("seq", no_wrap=True, justify="right")
    table.add_column("at (UTC)", no_wrap=True)
    for column in ("event", "change", "actor", "cause", "reason"):
        table.add_column(column, overflow="fold")
    for e in events:
        change = Text.assemble(status_text(e.from_status), " -> ", status_text(e.to_status))
        at = e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(e.seq), at, e.event, change, e.actor or "-", e.cause or "-",
                      e.reason or "-")
    out = console()
    out.print(table)
    out.print(f"{len(events)} event(s)", style="dim")


@instance.command("health")
@click.argument("ref")
@click.option("--subtree", is_flag=True, help="Roll up the whole subtree.")
@json_option
@click.pass_obj
def instance_health(backend: Backend, ref: str, subtree: bool, as_json: bool) -> None:
    """Show an instance's health: healthy, degraded, unhealthy or unknown, and why."""
    manager = backend.manager()
    report = manager.health_check(resolve_ref(manager, ref), subtree=subtree)
    if as_json:
        print_json(health_dict(report))
        return
    styles = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "cyan"}
    out = console()
    out.print(Text.assemble(f"{report.id} ({report.instance_status.value}): ",
                            (report.status, styles.get(report.status, ""))))
    checks = {"pass": "green", "warn": "yellow", "fail": "red", "unknown": "cyan"}
    for check in report.checks:
        out.print(Text.assemble("  ", (f"{check.status:<7}", checks.get(check.status, "")),
                                f" {check.name}: {check.detail}"))
    if report.subtree is not None:
        counts = ", ".join(f"{n} {s}" for s, n in report.subtree.items() if n)
        out.print(f"subtree: {counts}")
        for instance_id in report.unhealthy:
            out.print(f"  unhealthy: {instance_id}", style="red")


# -- purge --------------------------------------------------------------------------------
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_MAX_DURATION = timedelta(days=100 * 366)
"""As the API's older_than_seconds: older than any instance, and far from datetime.min."""


class Duration(click.ParamType):
    """A duration such as ``30m``, ``12h``, ``7d`` or ``1d12h`` (units s, m, h, d, w)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration such as 30m, 12h, 7d or 1d12h", param, ctx)
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
        if seconds > _MAX_DURATION.total_seconds():
            self.fail(f"{value!r} is longer than 100 years", param, ctx)
        return timedelta(seconds=seconds)


def purge_dict(report: PurgeReport) -> dict[str, Any]:
    def item(i: PurgeItem) -> dict[str, Any]:
        return {"id": i.id, "name": i.name, "scope": i.scope,
                "archived_at": i.archived_at.isoformat() if i.archived_at else None,
                "reason": i.reason}
    return {"dry_run": report.dry_run, "purged": [item(i) for i in report.purged],
            "kept": [item(i) for i in report.kept], "more": report.more,
            "cursor": report.cursor}


@cli.command()
@click.option("--dry-run", is_flag=True, help="Delete nothing; list what would go and why.")
@click.option("--older-than", type=Duration(),
              help="Purge what was archived this long ago (30m, 12h, 7d), instead of each "
                   "instance's own retention.")
@click.option("--limit", type=click.IntRange(1, purging.DEFAULT_LIMIT),
              default=purging.DEFAULT_LIMIT, show_default=True,
              help="Examine at most this many candidates, oldest archive first.")
@click.option("--after", metavar="CURSOR",
              help="Go on after the candidates an earlier purge examined (its cursor).")
@click.option("--actor", default=default_actor, help="Who the audit trail names.")
@json_option
@click.pass_obj
def purge(backend: Backend, dry_run: bool, older_than: timedelta | None, limit: int,
          after: str | None, actor: str | None, as_json: bool) -> None:
    """Delete ARCHIVED EPHEMERAL instances past their retention; their history stays.

    Prints one line per instance looked at: what goes (or would go) and what stays, each
    with the reason; and, when it stopped at --limit, the --after that goes on.
    """
    report = backend.manager().purge(older_than, dry_run=dry_run, actor=actor, limit=limit,
                                     after=after)
    if as_json:
        print_json(purge_dict(report))
        return
    went = "would purge" if dry_run else "purged"
    for verb, items in ((went, report.purged), ("kept", report.kept)):
        for i in items:  # click, not rich: one line per item, never wrapped
            click.echo(f"{verb} {i.id} {i.name}: {i.reason}")
    summary = f"{went} {len(report.purged)} instance(s), kept {len(report.kept)}"
    click.echo(summary + (" (dry run: nothing was deleted)" if dry_run else ""))
    if report.more:
        click.echo(f"stopped at the limit of {limit} with more left: go on with "
                   f"--after {report.cursor}")


# -- export, import, check ----------------------------------------------------------------
@cli.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@json_option
@click.pass_obj
def export_command(backend: Backend, file: str, as_json: bool) -> None:
    """Write the whole hierarchy, history included, to FILE (.json, .yaml or .yml)."""
    file_format(file)  # an unknown extension fails before the graph is read
    data = export_graph(backend.driver, backend.database)
    write_export(data, file)
    summary = {"file": file, "instances": len(data["instances"]),
               "events": len(data["events"]), "event_seq": data["event_seq"]}
    if as_json:
        print_json(summary)
    else:
        console().print(f"exported {summary['instances']} instance(s) and "
                        f"{summary['events']} event(s) to {file}")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_obj
def import_command(backend: Backend, file: str, as_json: bool) -> None:
    """Restore an export from FILE into an empty database (statuses and history as-is)."""
    data = read_export(file)
    result = import_graph(backend.driver, data, backend.database)
    if as_json:
        print_json({"file": file, **result.to_dict()})
    else:
        if result.removed_unfinished:
            console().print(f"removed {result.removed_unfinished} node(s) left by an earlier "
                            "import that never finished")
        console().print(f"imported {result.instances} instance(s) and {result.events} "
                        f"event(s) from {file}")


@cli.command()
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Check the hierarchy invariants; exit code 1 when any is broken."""
    backend: Backend = ctx.obj
    violations = check_invariants(backend.driver, backend.database)
    if as_json:
        print_json({"violations": [v.to_dict() for v in violations],
                    "count": len(violations)})
    elif violations:
        out = console()
        for violation in violations:
            out.print(Text.assemble((violation.kind, "red"), ": ", violation.message))
        out.print(f"{len(violations)} violation(s)", style="bold red")
    else:
        console().print("no violations", style="green")
    if violations:
        ctx.exit(EXIT_ERROR)
