"""The domain objects: plain dataclasses, built from graph rows by the repository.

Neo4j properties cannot hold maps, so ``config`` and ``metadata`` are stored as JSON
strings (``config``, ``config_set`` and ``metadata`` properties) and decoded here; they
round-trip exactly. Timestamps are stored as native Neo4j ``DATETIME`` values in UTC and
read back as ISO strings (see ``_native``).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, overload

import orjson

from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType


class HierarchyReader(Protocol):
    """What an instance needs to answer ``get_ancestors()`` and ``get_descendants()``
    (the repository is one): the models know no loader."""

    def get_ancestors(self, instance_id: str) -> list[HopperInstance]: ...

    def get_descendants(self, instance_id: str) -> list[HopperInstance]: ...


_UNSET: Any = object()


class _JsonProperty:
    """A dict property of HopperInstance kept as its stored JSON text (slot ``_<name>_json``)
    until first read, then decoded once into slot ``_<name>``; assigning a dict replaces
    both."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.decoded, self.text = f"_{name}", f"_{name}_json"

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _JsonProperty: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> dict[str, Any]: ...

    def __get__(self, instance: object | None, owner: type | None = None
                ) -> _JsonProperty | dict[str, Any]:
        if instance is None:
            return self
        value = getattr(instance, self.decoded)
        if value is _UNSET:
            value = orjson.loads(getattr(instance, self.text) or "{}")
            setattr(instance, self.decoded, value)
        return value

    def __set__(self, instance: object, value: dict[str, Any]) -> None:
        setattr(instance, self.decoded, value)
        setattr(instance, self.text, None)


class HopperInstance:
    """One node of the hierarchy. ``config`` is the full config (defaults merged in).

    ``config``, ``metadata`` and ``config_set`` arrive from the graph as JSON text and are
    decoded on first access: a tree of 100,000 instances that is only walked or sent on as
    JSON never builds 300,000 dicts (see ``json_fragment``).
    """

    __slots__ = (
        "_config",
        "_config_json",
        "_config_set",
        "_config_set_json",
        "_metadata",
        "_metadata_json",
        "_repository",
        "archived_at",
        "created_at",
        "depth",
        "heartbeat_at",
        "id",
        "instance_type",
        "name",
        "parent_id",
        "project_id",
        "scope",
        "started_at",
        "status",
        "stopped_at",
        "updated_at",
        "version",
    )
    # the decoded value (_UNSET until first read) and the stored text (None once replaced)
    _config: Any
    _metadata: Any
    _config_set: Any
    _config_json: str | None
    _metadata_json: str | None
    _config_set_json: str | None

    def __init__(self, id: str, name: str, scope: HopperScope, status: InstanceStatus,
                 instance_type: InstanceType, parent_id: str | None, project_id: str | None,
                 config: dict[str, Any], metadata: dict[str, Any], created_at: datetime,
                 updated_at: datetime, started_at: datetime | None = None,
                 stopped_at: datetime | None = None, archived_at: datetime | None = None,
                 version: int = 1, depth: int = 0, config_set: dict[str, Any] | None = None,
                 heartbeat_at: datetime | None = None,
                 _repository: HierarchyReader | None = None) -> None:
        self.id, self.name, self.scope, self.status = id, name, scope, status
        self.instance_type, self.parent_id, self.project_id = instance_type, parent_id, project_id
        self.created_at, self.updated_at = created_at, updated_at
        self.started_at, self.stopped_at, self.archived_at = started_at, stopped_at, archived_at
        self.version, self.depth, self.heartbeat_at = version, depth, heartbeat_at
        self._repository = _repository
        self._config, self._metadata = config, metadata
        self._config_set = {} if config_set is None else config_set
        self._config_json = self._metadata_json = self._config_set_json = None

    @classmethod
    def _from_graph(cls, id: str, name: str, scope: HopperScope, status: InstanceStatus,
                    instance_type: InstanceType, parent_id: str | None,
                    project_id: str | None, config: str | None, config_set: str | None,
                    metadata: str | None, version: int, depth: int | None,
                    created_at: datetime, updated_at: datetime, started_at: datetime | None,
                    stopped_at: datetime | None, archived_at: datetime | None,
                    heartbeat_at: datetime | None, repository: HierarchyReader | None
                    ) -> HopperInstance:
        """Build from stored values, keeping the three JSON properties as text for now."""
        self = cls.__new__(cls)
        self.id, self.name, self.scope, self.status = id, name, scope, status
        self.instance_type, self.parent_id, self.project_id = instance_type, parent_id, project_id
        self.created_at, self.updated_at = created_at, updated_at
        self.started_at, self.stopped_at, self.archived_at = started_at, stopped_at, archived_at
        self.version, self.depth, self.heartbeat_at = version, depth or 0, heartbeat_at
        self._repository = repository
        self._config = self._metadata = self._config_set = _UNSET
        self._config_json = config or "{}"
        self._metadata_json = metadata or "{}"
        self._config_set_json = config_set or "{}"
        return self

    config = _JsonProperty()
    metadata = _JsonProperty()
    config_set = _JsonProperty()
    """The keys the caller set explicitly: what inheritance and provenance look at."""

    def json_fragment(self, name: str) -> orjson.Fragment | dict[str, Any]:
        """``config`` or ``metadata`` ready for ``orjson.dumps``: the stored text as it
        came from the graph while nothing has decoded it, else the decoded dict."""
        raw = getattr(self, f"_{name}_json")
        if getattr(self, f"_{name}") is _UNSET and raw is not None:
            return orjson.Fragment(raw)
        return getattr(self, name)

    def __repr__(self) -> str:
        return (f"HopperInstance(id={self.id!r}, name={self.name!r}, scope={self.scope}, "
                f"status={self.status}, parent_id={self.parent_id!r}, depth={self.depth}, "
                f"version={self.version})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HopperInstance):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _COMPARED)

    __hash__ = None  # type: ignore[assignment]

    def get_ancestors(self) -> list[HopperInstance]:
        """Parents up to the root, nearest first: one query, no walk."""
        return self._repo().get_ancestors(self.id)

    def get_descendants(self) -> list[HopperInstance]:
        """Every instance below this one: one query."""
        return self._repo().get_descendants(self.id)

    def _repo(self) -> HierarchyReader:
        if self._repository is None:
            raise RuntimeError("this instance was not loaded through a repository")
        return self._repository

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as strings, times as RFC 3339 with offset."""
        return {
            "id": self.id, "name": self.name, "scope": self.scope.value,
            "status": self.status.value, "instance_type": self.instance_type.value,
            "parent_id": self.parent_id, "project_id": self.project_id,
            "config": self.config, "metadata": self.metadata,
            "created_at": iso_or_none(self.created_at), "updated_at": iso_or_none(self.updated_at),
            "started_at": iso_or_none(self.started_at), "stopped_at": iso_or_none(self.stopped_at),
            "archived_at": iso_or_none(self.archived_at),
            "heartbeat_at": iso_or_none(self.heartbeat_at), "version": self.version,
            "depth": self.depth,
        }


_COMPARED = ("id", "name", "scope", "status", "instance_type", "parent_id", "project_id",
             "config", "metadata", "created_at", "updated_at", "started_at", "stopped_at",
             "archived_at", "version", "depth")


@dataclass(slots=True)
class InstanceSpec:
    """What a caller asks to create. Only name and scope are required; the rest defaults
    by the scope's rules (type, project_id inherited, config merged over the template)."""

    name: str
    scope: HopperScope | str
    parent_id: str | None = None
    project_id: str | None = None
    instance_type: InstanceType | str | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    id: str | None = None


@dataclass(slots=True)
class InstanceEvent:
    """One audit record: a create, a delete, or a status change, with its cause."""

    id: str
    seq: int
    instance_id: str
    event: str
    from_status: InstanceStatus | None
    to_status: InstanceStatus | None
    actor: str | None
    reason: str | None
    cause: str | None
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "seq": self.seq, "instance_id": self.instance_id,
            "event": self.event,
            "from_status": self.from_status.value if self.from_status else None,
            "to_status": self.to_status.value if self.to_status else None,
            "actor": self.actor, "reason": self.reason, "cause": self.cause,
            "at": iso_or_none(self.at),
        }


@dataclass(slots=True)
class TreeNode:
    """A node of a nested tree; built iteratively, so any depth works."""

    instance: HopperInstance
    children: list[TreeNode] = field(default_factory=list)


@dataclass(slots=True)
class FlatTreeRow:
    """A node of the flat tree form: the instance, its parent and its depth below the root."""

    instance: HopperInstance
    parent_id: str | None
    depth: int


@dataclass(slots=True)
class Page:
    """A page of a longer list: ``items`` plus what is needed to ask for the next one."""

    items: list[Any]
    total: int | None
    """How many match in all; None when paging by cursor (counting costs every match)."""
    offset: int
    limit: int
    next: str | None = None
    """The cursor of the next page (pass it as ``after``); None on the last page."""


def iso_or_none(value: datetime | None) -> str | None:
    """RFC 3339 with offset, as every JSON form of an instance or event writes times."""
    return value.isoformat() if value is not None else None


def _native(value: Any) -> datetime | None:
    """A timezone-aware datetime from what a query returned.

    The named queries return stored DATETIMEs as ISO strings (``toString(n.created_at)``):
    the driver's own DATETIME hydration costs ~200 us a value, parsing the string ~0.3 us.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    to_native = getattr(value, "to_native", None)
    return to_native() if to_native else value


# Plain dict lookups: calling the enum class costs ~1 us, and a tree of 100,000 makes 300,000.
_SCOPES = {s.value: s for s in HopperScope}
_STATUSES = {s.value: s for s in InstanceStatus}
_TYPES = {t.value: t for t in InstanceType}


def instance_from_row(row: dict[str, Any], repository: HierarchyReader | None = None
                      ) -> HopperInstance:
    """Build a HopperInstance from a ``n {.*}`` map projection (see the named queries)."""
    return HopperInstance._from_graph(
        row["id"], row["name"], _SCOPES[row["scope"]], _STATUSES[row["status"]],
        _TYPES[row["instance_type"]], row.get("parent_id"), row.get("project_id"),
        row.get("config"), row.get("config_set"), row.get("metadata"), row["version"],
        row.get("depth"), _native(row["created_at"]),  # type: ignore[arg-type]
        _native(row["updated_at"]),  # type: ignore[arg-type]
        _native(row.get("started_at")), _native(row.get("stopped_at")),
        _native(row.get("archived_at")), _native(row.get("heartbeat_at")), repository)


INSTANCE_COLUMNS = ("id", "name", "scope", "status", "instance_type", "parent_id",
                    "project_id", "config", "config_set", "metadata", "version", "depth",
                    "created_at", "updated_at", "started_at", "stopped_at", "archived_at",
                    "heartbeat_at")
"""The columns of a many-instance query, in this order: each a list with one entry per
instance (timestamps as ISO strings). One record of parallel lists is several times cheaper
to produce in Neo4j and to read in the driver than a record or a map per instance."""


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many objects that form no
    cycles (instances, tree nodes, response documents).

    Every allocation of such an object counts towards a collection, and building a tree of
    100,000 instances otherwise sets off full collections that walk everything built so far:
    about a third of the time to assemble the nested tree. Reference counting still frees
    what is dropped. Overlapping uses, from any threads, re-enable the collector when the
    last one ends, and only if it was enabled before the first began.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def instances_from_columns(row: dict[str, Any], repository: HierarchyReader | None = None
                           ) -> list[HopperInstance]:
    """HopperInstances from a record of ``INSTANCE_COLUMNS``; an instance deleted by a
    concurrent transaction between match and read (its id reads as null, or '' from
    ``instance_columns_of_rows``) is left out. '' reads as null in every column."""
    with gc_paused():
        return _instances_from_columns(row, repository)


def _instances_from_columns(row: dict[str, Any], repository: HierarchyReader | None
                            ) -> list[HopperInstance]:
    build, parse = HopperInstance._from_graph, datetime.fromisoformat
    scopes, statuses, types = _SCOPES, _STATUSES, _TYPES
    return [
        build(id_, name, scopes[scope], statuses[status], types[kind], parent_id or None,
              project_id or None, config, config_set, metadata, version, depth,
              parse(created), parse(updated), parse(started) if started else None,
              parse(stopped) if stopped else None, parse(archived) if archived else None,
              parse(heartbeat) if heartbeat else None, repository)
        for (id_, name, scope, status, kind, parent_id, project_id, config, config_set,
             metadata, version, depth, created, updated, started, stopped, archived,
             heartbeat) in zip(*(row[c] for c in INSTANCE_COLUMNS), strict=True)
        if id_
    ]


def event_from_row(row: dict[str, Any]) -> InstanceEvent:
    return InstanceEvent(
        id=row["id"], seq=row["seq"], instance_id=row["instance_id"], event=row["event"],
        from_status=InstanceStatus(row["from_status"]) if row.get("from_status") else None,
        to_status=InstanceStatus(row["to_status"]) if row.get("to_status") else None,
        actor=row.get("actor"), reason=row.get("reason"), cause=row.get("cause"),
        at=_native(row["at"]),  # type: ignore[arg-type]
    )


EVENT_COLUMNS = ("id", "seq", "instance_id", "event", "from_status", "to_status", "actor",
                 "reason", "cause", "at")
"""The columns of a many-event query: parallel lists, as ``INSTANCE_COLUMNS``."""


def events_from_columns(row: dict[str, Any]) -> list[InstanceEvent]:
    statuses, parse = _STATUSES, datetime.fromisoformat
    return [
        InstanceEvent(id_, seq, instance_id, event,
                      statuses[from_status] if from_status else None,
                      statuses[to_status] if to_status else None,
                      actor, reason, cause, parse(at))
        for (id_, seq, instance_id, event, from_status, to_status, actor, reason, cause,
             at) in zip(*(row[c] for c in EVENT_COLUMNS), strict=True)
    ]
