"""``hopper-graph serve`` as a real process on a free port, for tests about gunicorn.

``served(neo4j_source, tmp_path, workers=2, env={...})`` starts it against the test Neo4j
with no ``HOPPER_`` setting from outside but the ones given, waits for ``/health``, and
stops it (SIGTERM, then SIGKILL) on exit. Its stdout and stderr go to ``Server.log``.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    stdout: Path

    def call(self, method: str, path: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request on a new connection: (status, lower-cased headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def neo4j_env(neo4j_source: Any) -> dict[str, str]:
    settings = neo4j_source.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPPER_")}
    env["HOPPER_NEO4J_URI"] = settings.uri
    for name in ("user", "password", "database"):
        if getattr(settings, name):
            env[f"HOPPER_NEO4J_{name.upper()}"] = getattr(settings, name)
    return env


@contextlib.contextmanager
def served(neo4j_source: Any, tmp_path: Path, *, workers: int = 1, threads: int = 4,
           env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    full_env = {**neo4j_env(neo4j_source), **(env or {})}
    log, stdout = tmp_path / "serve.stderr", tmp_path / "serve.stdout"
    with log.open("wb") as err, stdout.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from hopper_graph.cli import main; main()", "serve",
             "--port", str(port), "--workers", str(workers), "--threads", str(threads)],
            env=full_env, start_new_session=True, stdout=out, stderr=err)
    server = Server(port, process, log, stdout)
    try:
        _wait_until_up(server)
        yield server
    finally:
        server.stop()


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"hopper-graph serve exited: {server.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            if server.call("GET", "/health")[0] == 200:
                return
        time.sleep(0.2)
    raise AssertionError("hopper-graph serve did not answer /health within 60 s")
