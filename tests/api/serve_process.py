"""A real ``hopper-graph serve`` process for tests about what gunicorn does: connections,
keep-alive, slow clients, streams and the errors gunicorn answers itself.

``start_serve`` runs the CLI's ``serve`` in a subprocess (its own session, so a stop reaches
gunicorn's workers too) on a free loopback port against the given Neo4j settings, with no
``HOPPER_`` setting from outside but the ones given, waits until ``/health`` answers, and
``stop`` ends it (SIGTERM, then SIGKILL after 15 s). The ``serve_process`` fixture starts as
many as a test asks for and stops them all at its end.

Its stdout and stderr go to one file, ``log``; with ``split_output=True`` stdout (where the
JSON access log goes) has a file of its own, ``stdout``, and ``log`` holds stderr.
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
    stdout: Path | None = None
    """stdout's own file, when the output was split (``log`` is then stderr alone)."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None,
                timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection: status, headers (lower-case names), body."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()

    def get(self, path: str, timeout: float = 10.0,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One GET on a fresh connection: status, headers (lower-case names), body."""
        return self.request("GET", path, headers, timeout=timeout)

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


def start_serve(settings: Neo4jSettings, log: Path, *args: str, stdout: Path | None = None,
                **env: str) -> ServeProcess:
    """``hopper-graph serve --port <free> *args`` with ``env`` added, once it answers; its
    stdout goes to ``stdout`` if given, else to ``log`` with its stderr."""
    port = free_port()
    with contextlib.ExitStack() as files:
        err = files.enter_context(log.open("wb"))
        out = files.enter_context(stdout.open("wb")) if stdout else err
        process = subprocess.Popen(
            [sys.executable, "-c", "from hopper_graph.cli import main; main()", "serve",
             "--port", str(port), *args],
            env=serve_env(settings, **env), start_new_session=True, stdout=out, stderr=err)
    served = ServeProcess(port, process, log, stdout)
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
    settings=None, split_output=False, **env)``, ``args`` such as ``"--workers", "2"``);
    each is stopped when the test ends."""
    started: list[ServeProcess] = []

    def start(*args: str, settings: Neo4jSettings | None = None, split_output: bool = False,
              **env: str) -> ServeProcess:
        name = f"serve-{len(started)}"
        log = tmp_path / (f"{name}.stderr" if split_output else f"{name}.log")
        stdout = tmp_path / f"{name}.stdout" if split_output else None
        started.append(start_serve(settings or neo4j_source.settings, log, *args,
                                   stdout=stdout, **env))
        return started[-1]

    yield start
    for served in started:
        served.stop()
