"""Per-app state: the settings, the one neo4j Driver and the InstanceManager over it.

Settings are Flask config keys with the ``HOPPER_`` prefix. A key the caller put in the
config wins; otherwise the environment variable of the same name; otherwise the default.
The driver is created once, when the app is set up, and kept in
``app.extensions["hopper_graph"]`` with its manager; a driver the app created is closed at
interpreter exit (or earlier by ``HopperGraphState.close()``), one it was given is not.
"""

from __future__ import annotations

import atexit
import os
from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from neo4j import Driver
from neo4j.exceptions import DriverError

from hopper_graph import (
    DatabaseUnavailable,
    InstanceManager,
    Neo4jSettings,
    ValidationError,
    apply_schema,
    connect,
)
from hopper_graph.errors import ConfigurationError
from hopper_graph.graph import NEO4J_ENV, read_env

EXTENSION = "hopper_graph"
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _origins(value: Any) -> list[str]:
    if isinstance(value, str):
        return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
    return [str(o).rstrip("/") for o in value or ()]


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _count(value: Any) -> int:
    if int(value) < 0:
        raise ValueError(value)
    return int(value)


def _seconds(value: Any) -> float:
    if not float(value) > 0:
        raise ValueError(value)
    return float(value)


SETTINGS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "HOPPER_API_TOKEN": (None, _text),
    "HOPPER_CORS_ORIGINS": ([], _origins),
    "HOPPER_MAX_CONTENT_LENGTH": (DEFAULT_MAX_CONTENT_LENGTH, int),
    "HOPPER_APPLY_SCHEMA": (True, _flag),
    "HOPPER_API_MAX_STREAMS": (2, _count),  # open event streams per worker process
    "HOPPER_API_STREAM_HEARTBEAT": (15.0, _seconds),
    "HOPPER_METRICS": (True, _flag),  # GET /metrics and the measuring behind it
}
"""Every setting of the API read from the environment: (default, parser). The library
reads ``HOPPER_NEO4J_*`` (``NEO4J_ENV``) itself."""


def load_settings(app: Flask) -> None:
    """Fill each HOPPER_ setting from the config, else the environment, else its default."""
    for key, (default, parse) in SETTINGS.items():
        value = app.config.get(key, os.environ.get(key))
        try:
            app.config[key] = default if value is None else parse(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{key}={value!r} is not valid") from None
    try:
        neo4j = read_env(ChainMap(app.config, os.environ))
    except ValidationError as exc:
        raise ConfigurationError(exc.message, exc.errors) from None
    app.config.update({NEO4J_ENV[name]: value for name, value in neo4j.items()})


@dataclass(eq=False)
class HopperGraphState:
    """What ``app.extensions["hopper_graph"]`` holds."""

    driver: Driver
    database: str | None
    manager: InstanceManager
    owns_driver: bool

    def close(self) -> None:
        """Close the driver if this app created it (safe to call twice)."""
        if self.owns_driver:
            atexit.unregister(self.close)
            self.owns_driver = False
            self.driver.close()


def init_state(app: Flask) -> HopperGraphState:
    """Create (or adopt) the driver, apply the schema, and keep both in ``app.extensions``."""
    config = app.config
    driver: Driver | None = config.get("HOPPER_DRIVER")
    database = config["HOPPER_NEO4J_DATABASE"]
    owns = driver is None
    if driver is None:
        driver = connect(_neo4j_settings(config))
    state = HopperGraphState(driver, database, InstanceManager(
        driver, database, hooks=config.get("HOPPER_HOOKS")), owns)
    if owns:
        atexit.register(state.close)
    if config["HOPPER_APPLY_SCHEMA"]:
        try:
            apply_schema(driver, database)
        except DriverError as exc:
            state.close()
            raise DatabaseUnavailable(
                f"cannot apply the schema: Neo4j is unavailable ({type(exc).__name__}); set "
                "HOPPER_APPLY_SCHEMA=false to start without it") from exc
        except BaseException:
            state.close()
            raise
    app.extensions[EXTENSION] = state
    return state


def _neo4j_settings(config: Any) -> Neo4jSettings:
    settings = Neo4jSettings.from_env(env=config)
    if settings is None:
        raise ConfigurationError(
            "no Neo4j to talk to: set HOPPER_NEO4J_URI (e.g. bolt://127.0.0.1:7687), or pass "
            "an open driver as HOPPER_DRIVER; `hopper-graph serve` starts a local server and "
            "sets it for you")
    return settings


def state() -> HopperGraphState:
    return current_app.extensions[EXTENSION]


def manager() -> InstanceManager:
    """The current app's InstanceManager: what every view calls."""
    return state().manager
