"""A real ``hopper-graph serve`` process for tests about what gunicorn does: connections,
keep-alive, slow clients, streams and the errors gunicorn answers itself.

``start_serve`` runs the CLI's ``serve`` in a subprocess (its own session, so a stop reaches
gunicorn's workers too) on a free loopback port against the given Neo4j settings, waits
until ``/health`` answers, and ``stop`` ends it (SIGTERM, then SIGKILL after 15 s). The
``serve_process`` fixture starts as many as a test asks for and stops them all at its end.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hopper_graph.graph import Neo4jSettings

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServeProcess:
    """One running ``hopper-graph serve``."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def get(self, path: str, timeout: float = 10.0,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One GET on a fresh connection: status, headers (lower-case names), body."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A raw TCP connection to the server."""
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # a test may have stopped it
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def serve_env(settings: Neo4jSettings, **extra: str) -> dict[str, str]:
    """This process's environment without HOPPER_ settings, then the Neo4j ``settings``
    and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPPER_")}
    env["HOPPER_NEO4J_URI"] = settings.uri
    for name in ("user", "password", "database"):
        if getattr(settings, name):
            env[f"HOPPER_NEO4J_{name.upper()}"] = getattr(settings, name)
    env.update(extra)
    return env


def start_serve(settings: Neo4jSettings, log: Path, *args: str, **env: str) -> ServeProcess:
    """``hopper-graph serve --port <free> *args`` with ``env`` added, once it answers."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", "from hopper_graph.cli import main; main()", "serve",
             "--port", str(port), *args],
            env=serve_env(settings, **env), start_new_session=True, stdout=output,
            stderr=subprocess.STDOUT)
    served = ServeProcess(port, process, log)
    try:
        wait_until_up(served)
    except BaseException:
        served.stop()
        raise
    return served


def wait_until_up(served: ServeProcess, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(f"hopper-graph serve exited: {served.output()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if served.get("/health", timeout=2)[0] == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"hopper-graph serve did not answer /health within {within:.0f} s")


StartServe = Callable[..., ServeProcess]


@pytest.fixture
def serve_process(neo4j_source, clean_graph, tmp_path) -> Iterator[StartServe]:
    """Start ``hopper-graph serve`` processes against the test Neo4j (``start(*args,
    settings=None, **env)``); each is stopped when the test ends."""
    started: list[ServeProcess] = []

    def start(*args: str, settings: Neo4jSettings | None = None,
              **env: str) -> ServeProcess:
        log = tmp_path / f"serve-{len(started)}.log"
        started.append(start_serve(settings or neo4j_source.settings, log, *args, **env))
        return started[-1]

    yield start
    for served in started:
        served.stop()
