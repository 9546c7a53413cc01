"""What every command shares: the root group, the connection, one-line errors and
the output helpers."""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click
import yaml
from neo4j import Driver
from neo4j.exceptions import DriverError, Neo4jError
from rich.text import Text

from hopper_graph import __version__
from hopper_graph.cli.output import to_json
from hopper_graph.enums import HopperScope, InstanceStatus
from hopper_graph.errors import (
    CommandError,
    DatabaseUnavailable,
    HopperGraphError,
    LocalNeo4jError,
    ValidationError,
)
from hopper_graph.graph import Neo4jSettings, connect, verify
from hopper_graph.lifecycle import TransitionResult
from hopper_graph.local_neo4j import LocalNeo4j
from hopper_graph.manager import HealthReport, InstanceManager
from hopper_graph.models import HopperInstance

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
CONNECT_TIMEOUT = 1.5
"""Seconds a command waits for the server to answer, at first contact and whenever it
opens a connection, so a database that is down is reported within 2 s of the start (a
command runs once: there is no outage to ride out, unlike the API server). Transactions
are still retried within HOPPER_NEO4J_TIMEOUT once the server has answered."""
_REMEDIES = {
    "auth-failed": "check HOPPER_NEO4J_USER and HOPPER_NEO4J_PASSWORD",
    "name-not-resolved": "check the host in HOPPER_NEO4J_URI",
    "tls": "check the scheme: bolt+s:// and neo4j+s:// (or +ssc) speak TLS, bolt:// and "
           "neo4j:// do not",
    "not-bolt": "point HOPPER_NEO4J_URI at the Bolt port (7687 unless configured)",
}
"""What to do about each cause of :func:`hopper_graph.graph.unreachable_cause`; anything
else: see whether the server runs."""
_CHECK_SERVER = "is it running? see `hopper-graph neo4j status`"
STATUS_STYLES = {
    InstanceStatus.CREATED: "cyan",
    InstanceStatus.ACTIVE: "green",
    InstanceStatus.PAUSED: "yellow",
    InstanceStatus.STOPPED: "red",
    InstanceStatus.ARCHIVED: "bright_black",
}


# -- connection ---------------------------------------------------------------------------
class Backend:
    """The connection of one command: opened on first use, which checks at once that the
    server answers (one try, CONNECT_TIMEOUT), closed when the command ends."""

    def __init__(self) -> None:
        self.settings: Neo4jSettings | None = None
        self._driver: Driver | None = None

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            self.settings = resolve_settings()
            driver = connect(self.settings, min(self.settings.timeout, CONNECT_TIMEOUT))
            try:
                verify(driver)
            except BaseException:
                driver.close()
                raise
            self._driver = driver
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

# Help as click shows it.
_PASS_THROUGH: tuple[type[BaseException], ...] = _HELP_ERRORS


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
    """The root group: turns every failure into one ``error:`` line on stderr; an
    unexpected one (a bug) also gets its traceback with ``-v``."""

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
            raise  # help as click shows it
        except BrokenPipeError:
            # The reader stopped reading (`| head`): what it asked for, it got. Exit 0, not
            # click's 1, which fails a `set -o pipefail` script for nothing; stdout goes to
            # /dev/null so the interpreter's last flush does not fail on the pipe again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from None
        except (HopperGraphError, CommandError, LocalNeo4jError, DriverError, Neo4jError,
                OSError) as exc:
            backend = ctx.obj if isinstance(ctx.obj, Backend) else None
            code, message = describe_error(exc, backend)
            click.echo(f"error: {message}", err=True)
            ctx.exit(code)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise  # click's own ways out: an exit code, Ctrl-C, a message it shows
        except Exception as exc:
            report_unexpected(exc, verbose=bool(ctx.params.get("verbose")))
            ctx.exit(EXIT_ERROR)


def report_unexpected(exc: Exception, verbose: bool) -> None:
    """A bug, as one ``error:`` line, after its traceback with ``-v``: whoever reports it
    needs the traceback, and whoever runs a script needs one line."""
    if verbose:
        traceback.print_exc()
    hint = "" if verbose else " (run with -v for the traceback)"
    message = _one_line(f"unexpected {type(exc).__name__}: {exc}")
    click.echo(f"error: {message}{hint}", err=True)


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
        if isinstance(exc, DatabaseUnavailable) and "reason" in exc.details:  # first contact
            message += "; " + _REMEDIES.get(exc.details["reason"], _CHECK_SERVER)
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
    click.echo(to_json(data))


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

