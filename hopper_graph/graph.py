"""The connection: settings, the one Driver, sessions, retries, bookmarks, error translation.

The one module that opens a session. Settings come from the environment with one prefix
(``HOPPER_NEO4J_URI``, ``_USER``, ``_PASSWORD``, ``_DATABASE``, ``_TIMEOUT``). Both
``bolt://`` (one server) and ``neo4j://`` (routing: clusters, Aura) URIs work: every read
runs as a read and every write as a write, and every session follows the driver's bookmark
manager, so within a process a read always sees the writes committed before it, whichever
cluster member serves it. :func:`following` adds bookmarks a client brought from elsewhere
(another worker, another process); :func:`last_bookmarks` is what a write left behind.

Work runs three ways:

- :meth:`Graph.read_rows` / :meth:`Graph.write_rows`: one statement as an auto-commit
  transaction, one round trip (a managed transaction takes two), retried here on the
  errors the server marks retryable;
- :meth:`Graph.read` / :meth:`Graph.write`: a managed transaction of several statements,
  retried by the driver.

Driver exceptions leave this module as the library's own (``errors.py``).

Reaching the server: :func:`connect` gives a driver that retries a failed transaction
within ``timeout`` (a brief outage goes unnoticed, the API's promise). :func:`verify`
is the opposite, for a command line: one attempt, now, no retry, and a
DatabaseUnavailable naming the cause (:func:`unreachable_cause`: connection refused, name
not resolved, no answer, TLS, authentication, not a Bolt port).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, TypeVar

from neo4j import (
    READ_ACCESS,
    WRITE_ACCESS,
    Bookmarks,
    Driver,
    GraphDatabase,
    ManagedTransaction,
    Record,
    Session,
)
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConstraintError,
    DatabaseError,
    DriverError,
    Neo4jError,
    ResultFailedError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from hopper_graph import metrics
from hopper_graph.errors import (
    Conflict,
    DatabaseUnavailable,
    DuplicateName,
    DuplicateProject,
    GlobalAlreadyExists,
    HopperGraphError,
    ValidationError,
)

T = TypeVar("T")
RETRY_FIRST_PAUSE = 0.05
RETRY_MAX_PAUSE = 1.0
SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
"""The URI schemes the library works with: Bolt, to one server or routed. The driver also
takes http(s):// (its preview Query API, which needs aiohttp and has no sessions)."""
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

_FOLLOW: ContextVar[tuple[str, ...]] = ContextVar("_FOLLOW", default=())
_LAST: ContextVar[tuple[str, ...]] = ContextVar("_LAST", default=())


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str
    user: str | None = None
    password: str | None = None
    database: str | None = None
    timeout: float = 10.0
    """Seconds to wait for a connection, and to retry a transaction, before giving up."""

    def __post_init__(self) -> None:
        check_uri(self.uri)
        if not (isinstance(self.timeout, int | float) and math.isfinite(self.timeout)
                and self.timeout > 0):
            raise ValidationError(f"the Neo4j timeout must be a positive number of seconds, "
                                  f"not {self.timeout!r}", errors={"timeout": [
                                      "must be a positive number of seconds"]})

    @classmethod
    def from_env(cls, default_uri: str | None = None,
                 env: Mapping[str, Any] | None = None) -> Neo4jSettings | None:
        """Settings from ``HOPPER_NEO4J_*`` in ``env`` (default: the process environment; the
        API passes its config); None when no URI is configured or given."""
        values = read_env(os.environ if env is None else env)
        values["uri"] = values["uri"] or default_uri
        return cls(**values) if values["uri"] else None


NEO4J_ENV = {"uri": "HOPPER_NEO4J_URI", "user": "HOPPER_NEO4J_USER",
             "password": "HOPPER_NEO4J_PASSWORD", "database": "HOPPER_NEO4J_DATABASE",
             "timeout": "HOPPER_NEO4J_TIMEOUT"}
"""Each of :class:`Neo4jSettings`' fields and the variable that sets it."""


def read_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """The ``HOPPER_NEO4J_*`` values in ``env`` by field: blank text is None, and the
    timeout a number of seconds (10 when unset)."""
    values: dict[str, Any] = {name: _text(env.get(key)) for name, key in NEO4J_ENV.items()}
    values["timeout"] = _seconds(env.get(NEO4J_ENV["timeout"]))
    return values


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _seconds(value: Any) -> float:
    if value is None:
        return 10.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"HOPPER_NEO4J_TIMEOUT must be a number of seconds, not "
                              f"{value!r}", errors={"timeout": ["must be a number of seconds"]}
                              ) from None


def check_uri(uri: str) -> None:
    """Refuse a URI whose scheme the library cannot work with, naming the ones it can.

    Checked here rather than left to the driver, which takes http:// for its preview Query
    API and then fails deep inside on a missing optional package."""
    match = _SCHEME.match(uri)
    accepted = ", ".join(SCHEMES)
    if match is None:
        raise ValidationError(f"the Neo4j URI has no scheme: use one of {accepted} "
                              "(e.g. bolt://127.0.0.1:7687)", errors={"uri": ["has no scheme"]})
    scheme = match[1].lower()
    if scheme not in SCHEMES:
        hint = " (Neo4j's HTTP port serves Browser; Bolt is usually on 7687)" \
            if scheme in ("http", "https") else ""
        unsupported = f"scheme {scheme}:// is not supported"
        raise ValidationError(f"the Neo4j URI {unsupported}: use one of {accepted}{hint}",
                              errors={"uri": [unsupported]})


def connect(settings: Neo4jSettings, connect_timeout: float | None = None) -> Driver:
    """A driver for ``settings``; the caller owns it and closes it.

    ``connect_timeout`` (default ``settings.timeout``) bounds getting a connection: opening
    one (the Bolt handshake included) or waiting for one from the pool. Retrying a failed
    transaction stays bounded by ``settings.timeout``."""
    auth = (settings.user, settings.password or "") if settings.user else None
    return GraphDatabase.driver(
        settings.uri,
        auth=auth,
        connection_timeout=connect_timeout or settings.timeout,
        connection_acquisition_timeout=connect_timeout or settings.timeout,
        max_transaction_retry_time=settings.timeout,
        # The library's queries are checked against the server in its own tests; server
        # notifications (e.g. "label does not exist" on an empty database) are noise here.
        notifications_min_severity="OFF",
    )


# -- bookmarks ----------------------------------------------------------------------------
MAX_BOOKMARKS = 16
MAX_BOOKMARK_LENGTH = 1024


@contextlib.contextmanager
def following(bookmarks: Iterable[str]) -> Iterator[None]:
    """Serve the reads and writes in this block at least as fresh as ``bookmarks`` (what a
    write elsewhere returned from :func:`last_bookmarks`)."""
    token = follow(bookmarks)
    try:
        yield
    finally:
        _FOLLOW.reset(token)


def follow(bookmarks: Iterable[str]) -> Token[tuple[str, ...]]:
    """:func:`following` for frameworks that open and close a context in two calls
    (pass the token to :func:`unfollow`). Refuses what cannot be a bookmark."""
    given = tuple(bookmarks)
    if len(given) > MAX_BOOKMARKS or not all(
            isinstance(b, str) and 0 < len(b) <= MAX_BOOKMARK_LENGTH and b.isprintable()
            for b in given):
        raise ValidationError("not a list of bookmarks", errors={"bookmark": [
            f"at most {MAX_BOOKMARKS} bookmarks of at most {MAX_BOOKMARK_LENGTH} "
            "printable characters, as a write returned them"]})
    return _FOLLOW.set(given)


def unfollow(token: Token[tuple[str, ...]]) -> None:
    _FOLLOW.reset(token)


def last_bookmarks() -> tuple[str, ...]:
    """The bookmarks of the last write committed in this context (empty before one)."""
    return _LAST.get()


def reset_last_bookmarks() -> None:
    _LAST.set(())


def followed() -> tuple[str, ...]:
    """The bookmarks this context follows (what :func:`following` set), for a write that
    another thread runs on its behalf (group commit)."""
    return _FOLLOW.get()


def remember(bookmarks: tuple[str, ...]) -> None:
    """Keep ``bookmarks`` as this context's last write's: what a write another thread ran
    on its behalf left behind (group commit)."""
    _LAST.set(bookmarks)


# -- errors -------------------------------------------------------------------------------
_DUPLICATE = re.compile(r"already exists with label `(?P<label>[^`]+)` and "
                        r"propert(?:y|ies) `(?P<prop>[^`]+)`")
"""The schema part of a uniqueness violation: label and first property come before any
value, so user text (a name that reads "GlobalInstance") cannot be mistaken for them."""


def _constraint_error(exc: ConstraintError) -> HopperGraphError | None:
    match = _DUPLICATE.search(exc.message or "")
    if match is None:
        return None
    label, prop = match["label"], match["prop"]
    if label == "GlobalInstance":
        return GlobalAlreadyExists("a GLOBAL instance already exists")
    if label == "TopProject":
        return DuplicateProject("a PROJECT instance with this project_id already exists",
                                errors={"project_id": ["already has a PROJECT instance"]})
    if label == "HopperInstance" and prop == "name":
        return DuplicateName("an instance with this name and scope already exists",
                             errors={"name": ["already taken in this scope"]})
    if label == "HopperRestore":
        return Conflict("another import began at the same moment: one restore at a time")
    if label == "HopperInstance" and prop == "id":
        return Conflict("an instance with this id already exists",
                        errors={"id": ["already taken"]})
    return None


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Driver exceptions become the library's. What the caller can fix is a 4xx-style
    error; everything else is DatabaseUnavailable with no server text in it."""
    try:
        yield
    except ConstraintError as exc:
        translated = _constraint_error(exc)
        if translated is None:
            raise Conflict("the change breaks a database constraint") from None
        raise translated from None
    except (ServiceUnavailable, SessionExpired) as exc:
        raise DatabaseUnavailable(f"Neo4j is unavailable: {unreachable_cause(exc)[1]}") from None
    except TransientError as exc:
        raise DatabaseUnavailable(f"Neo4j could not complete the request: {exc.code}") from None
    except AuthError:
        raise DatabaseUnavailable(f"Neo4j is unavailable: {_AUTH_FAILED}") from None
    except ClientError as exc:
        if exc.code and "InvalidBookmark" in exc.code:
            raise ValidationError("the bookmark is not one this database issued", errors={
                "bookmark": ["not a bookmark of this database"]}) from None
        raise DatabaseUnavailable(f"Neo4j refused the request: {exc.code}") from None
    except DatabaseError as exc:
        if "too large to index" in (exc.message or ""):
            raise ValidationError("a text value is too long to store", errors={
                "value": ["too long to index"]}) from None
        raise DatabaseUnavailable(f"Neo4j failed the request: {exc.code}") from None
    except DriverError as exc:
        raise DatabaseUnavailable(f"Neo4j driver error: {type(exc).__name__}") from None


# -- reaching the server ------------------------------------------------------------------
_AUTH_FAILED = "authentication failed (the user or password is wrong)"


def verify(driver: Driver) -> None:
    """Reach the server once, now, and raise DatabaseUnavailable naming the cause if it
    does not answer (``reason`` in its details is the slug of :func:`unreachable_cause`).

    One attempt, no retry: for a command line, which should say at once that nothing
    answers, where a server rides out a brief outage by retrying (``connect``)."""
    try:
        driver.verify_connectivity()
    except (DriverError, Neo4jError, OSError) as exc:
        reason, text = unreachable_cause(exc)
        raise DatabaseUnavailable(f"Neo4j is unavailable: {text}", reason=reason) from exc


def unreachable_cause(exc: BaseException) -> tuple[str, str]:
    """Why the server could not be reached, as a slug and a phrase, from the most telling
    error the driver's exception wraps (it chains them, and groups a routing failure's)."""
    chain = list(_causes(exc))
    for kind, matches in _UNREACHABLE:
        for error in chain:
            if matches(error):
                return kind, _phrase(kind, error)
    os_error = next((e for e in chain if isinstance(e, OSError) and e.strerror), None)
    if os_error is not None:
        return "os-error", str(os_error.strerror).lower()
    return "unavailable", type(exc).__name__


_UNREACHABLE: tuple[tuple[str, Callable[[BaseException], bool]], ...] = (
    ("auth-failed", lambda e: isinstance(e, AuthError)),
    ("name-not-resolved", lambda e: isinstance(e, socket.gaierror)),
    ("tls", lambda e: isinstance(e, ssl.SSLError)),  # certificate failures too
    ("connection-refused", lambda e: isinstance(e, ConnectionRefusedError)),
    ("timed-out", lambda e: isinstance(e, TimeoutError)),
    ("not-bolt", lambda e: isinstance(e, ServiceUnavailable) and "looks like HTTP" in str(e)),
)
"""Most telling first: a TLS failure also shows as a closed connection, and so on."""


def _phrase(kind: str, error: BaseException) -> str:
    if kind == "name-not-resolved":
        return f"name not resolved ({getattr(error, 'strerror', None) or error})"
    if kind == "tls":
        detail = getattr(error, "reason", None) or type(error).__name__
        return f"TLS handshake failed ({detail})"
    return {"auth-failed": _AUTH_FAILED, "connection-refused": "connection refused",
            "timed-out": "no answer in time (connection timed out)",
            "not-bolt": "the port answers HTTP, not Bolt"}[kind]


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every error behind it: causes, contexts and the members of groups."""
    stack, seen = [exc], set()
    while stack:
        error = stack.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        stack.extend(e for e in (error.__context__, error.__cause__) if e is not None)
        if isinstance(error, BaseExceptionGroup):
            stack.extend(reversed(error.exceptions))


def _retryable_cause(exc: ResultFailedError) -> Exception:
    """The error to hand the driver for a result that failed because of another one.

    When the server fails one statement of a transaction (a deadlock, say), reading any
    other result of it raises ResultFailedError, which the driver does not retry; its cause
    is the server's error, which it does retry when it is transient."""
    cause = exc.__cause__
    if isinstance(cause, Neo4jError) and cause.is_retryable():
        return cause
    return exc


def _plain(record: Record) -> dict[str, Any]:
    """A record as a dict, as it came off the wire.

    The named queries return map projections and lists, never Node objects, so nothing
    needs the recursive conversion of ``Record.data()``, which cost more than half of
    reading a 5,000-instance chain.
    """
    return dict(zip(record.keys(), record.values(), strict=True))


def _retry_time(driver: Driver) -> float:
    """The driver's ``max_transaction_retry_time``; the driver has no public accessor."""
    config = getattr(driver, "_default_workspace_config", None)
    return float(getattr(config, "max_transaction_retry_time", 30.0))


class Graph:
    """Sessions on one database of one driver, every one following the bookmarks."""

    def __init__(self, driver: Driver, database: str | None = None,
                 retry_time: float | None = None,
                 guard: Callable[[], None] | None = None) -> None:
        self.driver = driver
        self.database = database
        self.retry_time = _retry_time(driver) if retry_time is None else retry_time
        """Seconds to keep retrying an auto-commit statement."""
        self.guard = guard
        """Called before each read and write; it raises to refuse them (the manager's
        Graph refuses while a restore is unfinished: ``restores.RestoreWatch``)."""

    @contextlib.contextmanager
    def session(self, write: bool = True, **config: Any) -> Iterator[Session]:
        """A session on the database, following this process's and the caller's bookmarks;
        a write's new bookmarks are kept for :func:`last_bookmarks`."""
        if self.guard is not None:
            self.guard()
        follow = _FOLLOW.get()
        if follow:
            config["bookmarks"] = Bookmarks.from_raw_values(follow)
        with metrics.transaction(write), translate_errors(), self.driver.session(
                database=self.database,
                bookmark_manager=self.driver.execute_query_bookmark_manager,
                default_access_mode=WRITE_ACCESS if write else READ_ACCESS,
                **config) as session:
            yield session
            if write:
                _LAST.set(tuple(session.last_bookmarks().raw_values))

    def read(self, work: Callable[..., T], *args: Any) -> T:
        """``work(tx, *args)`` in a managed read transaction."""
        with self.session(write=False) as session:
            return session.execute_read(_attempt(work), *args)

    def write(self, work: Callable[..., T], *args: Any) -> T:
        """``work(tx, *args)`` in a managed write transaction, retried on transient errors
        (so ``work`` must be safe to run again: a retry starts from scratch)."""
        with self.session() as session:
            return session.execute_write(_attempt(work), *args)

    def read_rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """The rows of one read statement, as an auto-commit transaction."""
        return self._auto(False, query, params)

    def write_rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """The rows of one write statement, as an auto-commit transaction: one round trip.
        The statement must be safe to repeat after a transient failure."""
        return self._auto(True, query, params)

    def write_shared(self, query: str, follow: Iterable[tuple[str, ...]], **params: Any
                     ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """:meth:`write_rows` on behalf of several callers (group commit): it follows every
        caller's bookmarks, and returns the rows with the bookmarks its commit left."""
        wanted = tuple(dict.fromkeys(b for bookmarks in follow for b in bookmarks))
        # not `following`: each caller's bookmarks were checked when it followed them, and
        # a batch's union may hold more than one caller is allowed to bring
        token = _FOLLOW.set(wanted)
        try:
            rows = self._auto(True, query, params)
            return rows, _LAST.get()
        finally:
            _FOLLOW.reset(token)

    def _auto(self, write: bool, query: str, params: dict[str, Any]
              ) -> list[dict[str, Any]]:
        """The driver does not retry auto-commit transactions, so this does, as
        ``execute_*`` would: on the errors that say a retry may succeed, with growing
        pauses, within the driver's retry time."""
        deadline = time.monotonic() + self.retry_time
        pause = RETRY_FIRST_PAUSE
        while True:
            try:
                with self.session(write=write) as session:
                    return [_plain(record) for record in session.run(query, params)]
            except DatabaseUnavailable as exc:
                cause = exc.__context__
                retryable = isinstance(cause, Neo4jError | DriverError) and cause.is_retryable()
                if not retryable or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_PAUSE)


def _attempt(work: Callable[..., T]) -> Callable[..., T]:
    def attempt(tx: ManagedTransaction, *args: Any) -> T:
        try:
            return work(tx, *args)
        except ResultFailedError as exc:
            raise _retryable_cause(exc) from None
    return attempt
