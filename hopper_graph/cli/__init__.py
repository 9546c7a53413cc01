"""``hopper-graph``: the library on the command line, for operators and scripts.

Commands: ``schema apply``; ``neo4j start|stop|status`` (the local development server);
``serve`` (the REST API under gunicorn); ``instance create|get|list|tree|start|stop|pause|
resume|archive|delete|history|health|update|move``; ``events [--follow]``; ``export FILE|-`` /
``import FILE|-``; ``check``; ``purge``; ``apply -f FILE``; ``reset``.
Every command takes ``--json`` for machine-readable output; the listings take
``-o table|wide|name|json|yaml`` and ``--no-headers``, and print one line per record when
stdout is not a terminal (``output.py``). See docs/cli.md.

The connection comes from ``HOPPER_NEO4J_*`` (``Neo4jSettings.from_env``); when
``HOPPER_NEO4J_URI`` is unset, the local server is used if it runs. An error is one line on
stderr, ``error: <message>``, and exit code 2 for invalid input or usage, 1 for anything
else (``neo4j status`` exits 3 when the server is stopped, ``check`` 1 on any violation).
"""

from hopper_graph.cli import (  # noqa: F401 - they register their commands
    apply,
    dev,
    events,
    instances,
    maintenance,
    move,
    server,
)
from hopper_graph.cli.base import cli, describe_error, main
from hopper_graph.cli.server import _gunicorn_app, is_loopback

__all__ = ["_gunicorn_app", "cli", "describe_error", "is_loopback", "main"]
