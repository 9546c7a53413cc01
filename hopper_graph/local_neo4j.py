"""A real Neo4j 5.26 Community server on 127.0.0.1, obtained from Maven Central.

The server distribution tarball is not published on Maven Central, but the artifacts it is
made of are: ``org.neo4j:neo4j`` carries ``org.neo4j.server.CommunityEntryPoint`` (the
class the ``neo4j`` shell script runs), ``org.neo4j.app:neo4j-server`` the HTTP connector,
and ``org.neo4j.client:neo4j-browser`` the Browser web app. Maven copies them once into a
cache folder; every later start is offline and runs::

    java -cp '<cache>/lib/*' org.neo4j.server.CommunityEntryPoint --home-dir=... --config-dir=...

with a ``neo4j.conf`` written by this module. No Java code of ours is involved.

Layout of the cache (``HOPPER_NEO4J_HOME``, default ``.neo4j-local`` in a checkout)::

    lib/                 the resolved jars (shared by every instance)
    <instance>/conf/     neo4j.conf, rewritten on each start
    <instance>/data/     the databases: survive stop/start
    <instance>/logs/     neo4j.log, debug.log, and the process's console output
    <instance>/neo4j.pid

Two instances are used by the project: ``dev`` (Bolt 7687, HTTP 7474) for the API, and
``test`` (Bolt 7688, HTTP 7475) for the test suite, so tests never wipe a developer's graph.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hopper_graph.errors import LocalNeo4jError

NEO4J_VERSION = "5.26.30"
BROWSER_VERSION = "5.24.0"
MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"

_POM = f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>hopper-graph</groupId>
  <artifactId>neo4j-local</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId><artifactId>neo4j</artifactId>
      <version>{NEO4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.neo4j.app</groupId><artifactId>neo4j-server</artifactId>
      <version>{NEO4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.neo4j.client</groupId><artifactId>neo4j-browser</artifactId>
      <version>{BROWSER_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""

_JVM_OPTIONS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+DisableExplicitGC",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
]


def default_cache_dir() -> Path:
    """``HOPPER_NEO4J_HOME``, else ``.neo4j-local`` in a checkout, else the user cache."""
    if env := os.environ.get("HOPPER_NEO4J_HOME"):
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".neo4j-local"
    return Path.home() / ".cache" / "hopper-graph" / "neo4j-local"


@dataclass(frozen=True)
class LocalNeo4j:
    """One named server instance under the cache folder."""

    name: str = "dev"
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "1g"
    pagecache: str = "512m"
    cache_dir: Path | None = None

    @classmethod
    def for_tests(cls, slot: int = 0) -> LocalNeo4j:
        """The instance the test suite uses, ports overridable by environment.

        ``slot`` > 0 gives a separate instance (own data, ports two apart per slot), for
        test sessions that run at the same time and must not wipe each other's graph.
        """
        return cls(
            name="test" if slot == 0 else f"test-{slot}",
            bolt_port=int(os.environ.get("HOPPER_TEST_NEO4J_BOLT_PORT", "7688")) + 2 * slot,
            http_port=int(os.environ.get("HOPPER_TEST_NEO4J_HTTP_PORT", "7475")) + 2 * slot,
        )

    @classmethod
    def from_env(cls) -> LocalNeo4j:
        """The development instance, ports overridable by environment."""
        return cls(
            bolt_port=int(os.environ.get("HOPPER_NEO4J_BOLT_PORT", "7687")),
            http_port=int(os.environ.get("HOPPER_NEO4J_HTTP_PORT", "7474")),
            heap=os.environ.get("HOPPER_NEO4J_HEAP", "1g"),
        )

    # -- paths --------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.cache_dir or default_cache_dir()

    @property
    def lib_dir(self) -> Path:
        return self.root / "lib"

    @property
    def home(self) -> Path:
        return self.root / self.name

    @property
    def pid_file(self) -> Path:
        return self.home / "neo4j.pid"

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def browser_url(self) -> str:
        """Neo4j Browser, served by this server, with its connect form filled in: this
        server's Bolt address and no authentication (it has none). Browser's own default is
        a ``neo4j://`` address with a username."""
        return (f"http://127.0.0.1:{self.http_port}/browser/"
                f"?dbms={self.uri}&preselectAuthMethod=NO_AUTH")

    # -- obtaining the jars -------------------------------------------------------------
    def ensure_jars(self) -> None:
        """Resolve the server's jars with Maven, once; later calls return at once."""
        marker = self.lib_dir / f".resolved-{NEO4J_VERSION}"
        if marker.exists():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalNeo4jError("Maven (mvn) is needed once to fetch Neo4j; it is not on PATH")
        self.root.mkdir(parents=True, exist_ok=True)
        pom = self.root / "pom.xml"
        pom.write_text(_POM)
        staging = self.root / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}"]
        print(f"hopper-graph: fetching Neo4j {NEO4J_VERSION} from Maven Central ...",
              file=sys.stderr)
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalNeo4jError(
                f"Maven could not resolve Neo4j {NEO4J_VERSION}:\n{result.stdout[-2000:]}"
            )
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        staging.rename(self.lib_dir)
        marker.touch()

    # -- process control ----------------------------------------------------------------
    def pid(self) -> int | None:
        """The server's pid when its process is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        with contextlib.suppress(OSError):
            # A zombie or a recycled pid running something else is not our server.
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if MAIN_CLASS.encode() not in cmdline:
                return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None and _port_open(self.bolt_port)

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until Bolt answers. Idempotent."""
        if self.is_running():
            return
        if self.pid() is None and _port_open(self.bolt_port):
            raise LocalNeo4jError(
                f"port {self.bolt_port} is taken by another process; set "
                "HOPPER_NEO4J_BOLT_PORT (or HOPPER_TEST_NEO4J_BOLT_PORT for tests)"
            )
        self.ensure_jars()
        java = _java()
        for sub in ("conf", "data", "logs", "run"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "conf" / "neo4j.conf").write_text(self._conf())
        if self.pid() is None:
            cmd = [java, f"-Xms{self.heap}", f"-Xmx{self.heap}", *_JVM_OPTIONS,
                   "-cp", f"{self.lib_dir}/*", MAIN_CLASS,
                   f"--home-dir={self.home}", f"--config-dir={self.home / 'conf'}"]
            self.pid_file.write_text(str(self._spawn(cmd)))
        self._wait_for_bolt(timeout)

    def _spawn(self, cmd: list[str]) -> int:
        """Start the server detached (own session, output to logs/console.log).

        posix_spawn rather than Popen: the server outlives this process, and a Popen
        object dropped while its child runs complains at garbage collection.
        """
        console = os.open(self.home / "logs" / "console.log",
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            return os.posix_spawn(cmd[0], cmd, dict(os.environ), setsid=True, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, console, 1),
                (os.POSIX_SPAWN_DUP2, console, 2),
            ])
        finally:
            os.close(console)

    def _wait_for_bolt(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._exited():
                raise LocalNeo4jError(
                    f"Neo4j exited during start; see {self.home / 'logs'}/console.log "
                    "and neo4j.log"
                )
            if _port_open(self.bolt_port) and _bolt_answers(self.uri):
                return
            time.sleep(0.5)
        raise LocalNeo4jError(f"Neo4j did not answer on {self.uri} within {timeout:.0f} s")

    def _exited(self) -> bool:
        """Whether the server process is gone (reaping it if it is our own child)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return True
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the server; nothing of it keeps running. Idempotent."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._exited():
            time.sleep(0.2)
        if not self._exited():
            os.kill(pid, signal.SIGKILL)
            while not self._exited():
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"neo4j-local[{self.name}]: stopped"
        state = "running" if _port_open(self.bolt_port) else "starting"
        return (f"neo4j-local[{self.name}]: {state} (pid {pid}) bolt {self.uri} "
                f"browser {self.browser_url} data {self.home / 'data'}")

    def _conf(self) -> str:
        return "\n".join([
            "# Written by hopper_graph.local_neo4j on every start; edits are overwritten.",
            "dbms.security.auth_enabled=false",
            f"server.bolt.listen_address=127.0.0.1:{self.bolt_port}",
            f"server.bolt.advertised_address=127.0.0.1:{self.bolt_port}",
            "server.http.enabled=true",
            f"server.http.listen_address=127.0.0.1:{self.http_port}",
            f"server.http.advertised_address=127.0.0.1:{self.http_port}",
            "server.https.enabled=false",
            f"server.memory.pagecache.size={self.pagecache}",
            "db.transaction.timeout=10m",  # bulk imports of 100k+ instances are one transaction
            "dbms.usage_report.enabled=false",
            f"server.directories.data={self.home / 'data'}",
            f"server.directories.logs={self.home / 'logs'}",
            f"server.directories.run={self.home / 'run'}",
            "",
        ])


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise LocalNeo4jError("Java 17 is needed to run Neo4j 5.26; `java` is not on PATH")
    return java


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _bolt_answers(uri: str) -> bool:
    from neo4j import GraphDatabase
    from neo4j.exceptions import Neo4jError, ServiceUnavailable

    try:
        with GraphDatabase.driver(uri, auth=None, connection_timeout=2) as driver:
            driver.verify_connectivity()
            driver.execute_query("RETURN 1")
        return True
    except (ServiceUnavailable, Neo4jError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    """``neo4j-local start|stop|status [--test]``: the script behind scripts/neo4j-local."""
    args = list(sys.argv[1:] if argv is None else argv)
    server = LocalNeo4j.for_tests() if "--test" in args else LocalNeo4j.from_env()
    args = [a for a in args if a != "--test"]
    command = args[0] if args else "status"
    try:
        if command == "start":
            server.start()
        elif command == "stop":
            server.stop()
        elif command != "status":
            print("usage: neo4j-local start|stop|status [--test]", file=sys.stderr)
            return 2
    except LocalNeo4jError as exc:
        print(f"neo4j-local: {exc}", file=sys.stderr)
        return 1
    print(server.status())
    return 0 if command == "stop" or server.pid() is not None else 3


if __name__ == "__main__":
    sys.exit(main())
