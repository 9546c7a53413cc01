"""The domain objects, types only: ``hopper_graph.rows`` builds them from query rows, and
``hopper_graph.fields`` lists an instance's fields.

Neo4j properties cannot hold maps, so ``config`` and ``metadata`` are stored as JSON
strings (``config``, ``config_set`` and ``metadata`` properties) and decoded here, on first
read; they round-trip exactly. Timestamps are stored as native Neo4j ``DATETIME`` values in
UTC and arrive as ISO strings (see ``rows._native``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, overload

import orjson

from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType
from hopper_graph.fields import DOCUMENT_FIELDS


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
        "_labels",
        "_labels_json",
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
    _labels: Any
    _labels_json: str | None

    def __init__(self, id: str, name: str, scope: HopperScope, status: InstanceStatus,
                 instance_type: InstanceType, parent_id: str | None, project_id: str | None,
                 config: dict[str, Any], metadata: dict[str, Any], created_at: datetime,
                 updated_at: datetime, started_at: datetime | None = None,
                 stopped_at: datetime | None = None, archived_at: datetime | None = None,
                 version: int = 1, depth: int = 0, config_set: dict[str, Any] | None = None,
                 heartbeat_at: datetime | None = None,
                 _repository: HierarchyReader | None = None,
                 labels: dict[str, str] | None = None) -> None:
        self.id, self.name, self.scope, self.status = id, name, scope, status
        self.instance_type, self.parent_id, self.project_id = instance_type, parent_id, project_id
        self.created_at, self.updated_at = created_at, updated_at
        self.started_at, self.stopped_at, self.archived_at = started_at, stopped_at, archived_at
        self.version, self.depth, self.heartbeat_at = version, depth, heartbeat_at
        self._repository = _repository
        self._config, self._metadata = config, metadata
        self._config_set = {} if config_set is None else config_set
        self._labels = {} if labels is None else labels
        self._config_json = self._metadata_json = self._config_set_json = None
        self._labels_json = None

    @classmethod
    def from_stored(cls, id: str, name: str, scope: HopperScope, status: InstanceStatus,
                    instance_type: InstanceType, parent_id: str | None,
                    project_id: str | None, config: str | None, config_set: str | None,
                    metadata: str | None, labels: str | None, version: int,
                    depth: int | None,
                    created_at: datetime, updated_at: datetime, started_at: datetime | None,
                    stopped_at: datetime | None, archived_at: datetime | None,
                    heartbeat_at: datetime | None, repository: HierarchyReader | None
                    ) -> HopperInstance:
        """Build from stored values, keeping the three JSON properties as text for now
        (``hopper_graph.rows`` calls it for every instance a query reads)."""
        self = cls.__new__(cls)
        self.id, self.name, self.scope, self.status = id, name, scope, status
        self.instance_type, self.parent_id, self.project_id = instance_type, parent_id, project_id
        self.created_at, self.updated_at = created_at, updated_at
        self.started_at, self.stopped_at, self.archived_at = started_at, stopped_at, archived_at
        self.version, self.depth, self.heartbeat_at = version, depth or 0, heartbeat_at
        self._repository = repository
        self._config = self._metadata = self._config_set = self._labels = _UNSET
        self._config_json = config or "{}"
        self._metadata_json = metadata or "{}"
        self._labels_json = labels or "{}"
        self._config_set_json = config_set or "{}"
        return self

    config = _JsonProperty()
    metadata = _JsonProperty()
    labels = _JsonProperty()
    """Label keys to values (hopper_graph/labels.py): what selectors select by."""
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
            "config": self.config, "metadata": self.metadata, "labels": self.labels,
            "created_at": iso_or_none(self.created_at), "updated_at": iso_or_none(self.updated_at),
            "started_at": iso_or_none(self.started_at), "stopped_at": iso_or_none(self.stopped_at),
            "archived_at": iso_or_none(self.archived_at),
            "heartbeat_at": iso_or_none(self.heartbeat_at), "version": self.version,
            "depth": self.depth,
        }


_COMPARED = DOCUMENT_FIELDS
"""Two instances are equal when their documents are: every field ``to_dict`` gives, not the
repository they were read through nor ``config_set`` (``config`` holds its effect)."""


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
    labels: dict[str, str] | None = None


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
    from_parent_id: str | None = None
    """A move: the parent the instance left."""
    to_parent_id: str | None = None
    """A move: the parent it went to."""

    def to_dict(self) -> dict[str, Any]:
        moved = {} if self.event != "move" else {
            "from_parent_id": self.from_parent_id, "to_parent_id": self.to_parent_id}
        return {
            "id": self.id, "seq": self.seq, "instance_id": self.instance_id,
            "event": self.event,
            "from_status": self.from_status.value if self.from_status else None,
            "to_status": self.to_status.value if self.to_status else None,
            "actor": self.actor, "reason": self.reason, "cause": self.cause,
            "at": iso_or_none(self.at), **moved,
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

