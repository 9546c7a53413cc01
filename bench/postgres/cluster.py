"""A throwaway PostgreSQL cluster: initdb into a temporary folder, serve on a unix socket in
that folder only, stop and remove everything afterwards.

PostgreSQL refuses to run as root, so when the benchmark runs as root the server programs
run as the ``postgres`` system user (Debian's packages create it) through ``runuser``, and
the folder is handed to that user. Durability stays at PostgreSQL's defaults (``fsync``,
``synchronous_commit`` and ``full_page_writes`` on, said explicitly on the command line):
the peer must pay for its commits as our Neo4j does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

BINDIR = Path("/usr/lib/postgresql/15/bin")
"""Debian's PostgreSQL 15 server programs; ``HOPPER_BENCH_PG_BIN`` names another folder."""

SERVER_USER = "postgres"
"""Who runs the server when the benchmark runs as root."""

SETTINGS = {
    "listen_addresses": "''",  # no TCP at all: the socket in the cluster's folder only
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run here; the message says why, for the benchmark to print."""


def find_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or PostgresUnavailable."""
    named = os.environ.get("HOPPER_BENCH_PG_BIN")
    candidates = [Path(named)] if named else [BINDIR]
    for folder in candidates:
        if all((folder / program).is_file() for program in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailable(
        f"no PostgreSQL server programs (initdb, pg_ctl, postgres) in "
        f"{', '.join(map(str, candidates))}; install Debian's postgresql-15 or set "
        "HOPPER_BENCH_PG_BIN to their folder")


class Cluster:
    """One throwaway cluster; ``with Cluster() as c:`` starts it and always removes it."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.runas = _runas()
        self.folder: Path | None = None

    @property
    def data(self) -> Path:
        assert self.folder is not None, "the cluster is not started"
        return self.folder / "data"

    @property
    def conninfo(self) -> dict[str, str]:
        """What ``psycopg.connect(**conninfo)`` needs: the socket folder, user, database."""
        assert self.folder is not None, "the cluster is not started"
        return {"host": str(self.folder), "user": "bench", "dbname": "postgres"}

    def start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hopper-bench-pg-"))
        try:
            if self.runas:
                user = pwd.getpwnam(self.runas)
                os.chown(self.folder, user.pw_uid, user.pw_gid)
            # --no-sync only spares initdb's own flush of the new files; the server below
            # runs with full durability.
            self._run("initdb", "-D", str(self.data), "-U", "bench", "--auth=trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")
            options = " ".join(f"-c {k}={v}" for k, v in SETTINGS.items())
            options += f" -c unix_socket_directories='{self.folder}'"
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
                      "-w", "-t", "60", "-o", options, "start")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (fast shutdown, then a kill if it lingers) and remove the folder."""
        if self.folder is None:
            return
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30",
                          "stop")
            except PostgresUnavailable:
                _kill_postmaster(self.data)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, program: str, *args: str) -> None:
        command = [*self._prefix(), str(self.bindir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            log = self.folder / "server.log" if self.folder else None
            tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
            raise PostgresUnavailable(f"{program} failed ({done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()[-1500:]}"
                                      f"{chr(10) + tail if tail else ''}")

    def _prefix(self) -> list[str]:
        return ["runuser", "-u", self.runas, "--"] if self.runas else []


def _runas() -> str | None:
    """None when we may run the server ourselves; else the user to run it as."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and PostgreSQL will not run as root; there is no "
            f"{SERVER_USER!r} user to run it as") from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and `runuser` is missing: cannot run "
                                  f"PostgreSQL as {SERVER_USER!r}")
    return SERVER_USER


def _kill_postmaster(data: Path) -> None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the cluster is thrown away
    except (OSError, ValueError, IndexError):
        pass
