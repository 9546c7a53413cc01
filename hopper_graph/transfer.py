"""Export and import of the whole instance graph: a backup that loses nothing.

``export_graph`` reads every instance (every property: status, timestamps, version, config,
overrides, metadata, ...), every audit event (those of deleted instances too) and the event
counter into one plain dict; ``write_export`` / ``read_export`` store it as JSON or YAML,
chosen by the file's extension. ``import_graph`` writes such a dict into a database that
holds no instance, event or counter yet, and gives back the same graph, history included.

The format (``format_version`` 1)::

    format: hopper-graph-export
    format_version: 1
    exported_at: <RFC 3339 time>        informative; ignored by import
    hopper_graph_version: <version>     informative
    event_seq: <int | null>             the audit counter: the last seq handed out
    datetime_properties:                the properties stored as Neo4j DATETIME
      instances: [created_at, updated_at, ...]
      events: [at]
    instances: [...]                    property maps, parents before children; parent_id
                                        names the PARENT_OF edge; config, config_set and
                                        metadata as maps rather than JSON strings
    events: [...]                       property maps, in seq order
    unlinked_event_ids: [...]           events whose instance exists without a HAS_EVENT
                                        edge to them (normally none)
    liens: [...]                        every lien (id, instance_id, reason, origin, actor,
                                        created_at as RFC 3339); optional on import (a
                                        file written before liens has none)

Both directions work on a quiet graph: Neo4j is read-committed, so an export taken while
others write may catch half of someone's later change. Both take an optional ``progress``
callback, called as ``progress(done, total)`` as rows are read or batches written (total
None when unknown), so a caller can show how far a long run has got.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml
from neo4j import Driver, ManagedTransaction, Result

from hopper_graph import __version__, audit, labels, rules
from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType
from hopper_graph.errors import Conflict, HopperGraphError, ValidationError
from hopper_graph.fields import JSON_FIELDS, TIME_FIELDS
from hopper_graph.graph import Graph, translate_errors
from hopper_graph.queries import QUERIES
from hopper_graph.restores import UnfinishedRestore, forget, refuse_if_unfinished
from hopper_graph.schema import apply_schema

log = logging.getLogger("hopper_graph.transfer")
FORMAT = "hopper-graph-export"
FORMAT_VERSION = 1
FORMATS = ("json", "yaml")
BATCH_SIZE = 5000
PROGRESS_EVERY = 1000
"""Rows an export reads between two progress reports (the driver fetches 1000 at a time)."""
JSON_PROPERTIES = frozenset(JSON_FIELDS)
"""Instance properties stored as JSON strings and exported as the maps they hold."""
DEFAULT_DATETIME_PROPERTIES: dict[str, list[str]] = {
    "instances": sorted(TIME_FIELDS),
    "events": ["at"],
}
"""Used when a (hand-written) file has no ``datetime_properties``."""
# Only what identity, edges and the constraints need: a restore brings back what was
# there, even an instance some bug left without, say, updated_at.
_INSTANCE_REQUIRED = ("id", "name", "scope")
_EVENT_REQUIRED = ("id", "seq", "instance_id")
_FIRST_KEYS = ("id", "seq", "instance_id", "name", "scope", "status", "instance_type",
               "parent_id", "project_id", "event", "from_status", "to_status")
_MAX_REPORTED = 20


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import wrote, and what it removed of an earlier one that never finished."""

    instances: int
    events: int
    event_seq: int | None
    removed_unfinished: int = 0
    """Nodes of an interrupted earlier import, removed before this one began."""

    def to_dict(self) -> dict[str, Any]:
        return {"instances": self.instances, "events": self.events,
                "event_seq": self.event_seq, "removed_unfinished": self.removed_unfinished}


Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: how far a long operation has got (total None if unknown)."""


def _silent(done: int, total: int | None) -> None:
    """The progress callback of a caller that wants none."""


# -- export -------------------------------------------------------------------------------
def export_graph(driver: Driver, database: str | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The whole instance graph as a plain, JSON- and YAML-ready dict (see the module doc).

    Refuses (Conflict) a graph whose PARENT_OF edges disagree with the instances' parent_id
    or form a cycle: no parents-first list can hold it. ``hopper-graph check`` names them.
    Refuses (RestoreUnfinished) while a restore is unfinished, before it writes anything:
    half a restore is no backup. ``progress`` hears the rows read and converted
    (instances, then events) against their count.
    """
    graph = Graph(driver, database)
    refuse_if_unfinished(graph, "export")
    audit.sequence_all(graph)  # events still waiting for their seq get one first
    read = graph.read(_read_export, progress or _silent)
    instances = [instance for instance, _ in read.instances]
    parents = {instance["id"]: row_parents for instance, row_parents in read.instances}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "hopper_graph_version": __version__,
        "event_seq": read.event_seq,
        "datetime_properties": {kind: sorted(keys) for kind, keys in read.datetimes.items()},
        "instances": _parents_first(instances, parents),
        "events": [event for event, _ in read.events],
        "unlinked_event_ids": [event["id"] for event, unlinked in read.events if unlinked],
        "liens": read.liens,
    }


@dataclass
class _Read:
    """What an export read: (properties, parent ids) per instance, (properties, unlinked)
    per event, the event counter, and which properties were DATETIMEs."""

    instances: list[tuple[dict[str, Any], Any]]
    events: list[tuple[dict[str, Any], Any]]
    event_seq: int | None
    datetimes: dict[str, set[str]]
    liens: list[dict[str, Any]]


def _read_export(tx: ManagedTransaction, progress: Progress) -> _Read:
    """Every instance and event, each converted as it streams in, so the progress counts
    the whole work (converting 100k property maps takes about as long as reading them)."""
    counts = tx.run(QUERIES.count_hopper_nodes.text).single()
    tally = _Tally(progress, counts["instances"] + counts["events"] if counts else None)
    datetimes: dict[str, set[str]] = {"instances": set(), "events": set()}
    instances = tally.rows(tx.run(QUERIES.export_instances.text),
                           datetimes["instances"], json_maps=True)
    events = tally.rows(tx.run(QUERIES.export_events.text), datetimes["events"],
                        json_maps=False)
    counter = tx.run(QUERIES.export_event_counter.text).single()
    liens = [{k: v for k, v in record["lien"].items() if v is not None}
             for record in tx.run(QUERIES.export_liens.text)]
    return _Read(instances, events, counter["value"] if counter else None, datetimes, liens)


class _Tally:
    """Rows read or written so far, reported against the expected total (for an export
    counted first from the store's statistics: a row more or less if others write)."""

    def __init__(self, progress: Progress, total: int | None) -> None:
        self.progress, self.total, self.done = progress, total, 0
        progress(0, total)

    def add(self, count: int) -> None:
        self.done += count
        self.progress(self.done, None if self.total is None else max(self.total, self.done))

    def rows(self, result: Result, datetimes: set[str], json_maps: bool
             ) -> list[tuple[dict[str, Any], Any]]:
        """Each (properties, second column) row with the properties converted, reported
        every PROGRESS_EVERY rows. By position, not ``data()``, which walks every value
        again and dominates at 100k rows."""
        rows = []
        for properties, other in result:
            rows.append((_export_props(properties, datetimes, json_maps), other))
            if len(rows) % PROGRESS_EVERY == 0:
                self.add(PROGRESS_EVERY)
        self.add(len(rows) % PROGRESS_EVERY)
        return rows


def _parents_first(instances: list[dict[str, Any]], parents: dict[str, list[str]]
                   ) -> list[dict[str, Any]]:
    """The instances in breadth-first order from the roots, keeping the query's order among
    siblings; refuses edges that disagree with parent_id, and cycles."""
    mismatched = [i["id"] for i in instances if parents[i["id"]] != _as_list(i.get("parent_id"))]
    if mismatched:
        raise Conflict(
            f"cannot export: {len(mismatched)} instance(s) have PARENT_OF edges that disagree "
            f"with their parent_id (first: {mismatched[0]}); run `hopper-graph check` and "
            "repair the graph first", ids=mismatched[:_MAX_REPORTED])
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    order = []
    for instance in instances:
        parent_id = instance.get("parent_id")
        if parent_id is None:
            order.append(instance)
        else:
            children[parent_id].append(instance)
    for instance in order:  # grows while it is walked: breadth first, no recursion
        order.extend(children.pop(instance["id"], []))
    if len(order) != len(instances):
        stuck = sorted({i["id"] for group in children.values() for i in group})
        raise Conflict(
            f"cannot export: {len(stuck)} instance(s) are not below any root (a PARENT_OF "
            f"cycle; first: {stuck[0]}); run `hopper-graph check` and repair the graph first",
            ids=stuck[:_MAX_REPORTED])
    return order


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else [value]


def _export_props(triples: list[list[Any]], datetimes: set[str], json_maps: bool
                  ) -> dict[str, Any]:
    """A property map from the query's [key, value, is_datetime] triples."""
    props = {}
    for key, value, is_datetime in triples:
        if is_datetime:
            datetimes.add(key)
        elif json_maps and key in JSON_PROPERTIES and isinstance(value, str):
            value = _json_map(value)
        elif not _is_plain(value):
            owner = next((v for k, v, _ in triples if k == "id"), None)
            raise HopperGraphError(
                f"cannot export property {key!r} of {owner}: values of type "
                f"{type(value).__name__} are not supported by the export format")
        props[key] = value
    return {key: props[key] for key in _ordered_keys(props)}


def _ordered_keys(props: dict[str, Any]) -> list[str]:
    first = [k for k in _FIRST_KEYS if k in props]
    return first + sorted(k for k in props if k not in _FIRST_KEYS)


def _json_map(value: str) -> Any:
    """The map (or list) a JSON property holds, when writing it back gives the same string;
    otherwise the string itself, so nothing is lost either way."""
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return value
    if isinstance(parsed, dict | list) and _dumps(parsed) == value:
        return parsed
    return value


def _dumps(value: Any) -> str | None:
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return None


def _is_plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str | int | float | bool) for v in value)
    return isinstance(value, str | int | float | bool)


# -- import -------------------------------------------------------------------------------
def import_graph(driver: Driver, data: dict[str, Any], database: str | None = None,
                 batch_size: int = BATCH_SIZE, progress: Progress | None = None,
                 source: str | None = None) -> ImportResult:
    """Restore an export into a database that holds no instance, event or counter yet.

    This is a restore, not a lifecycle action: statuses, versions, timestamps and events
    are written as they are in ``data``; no hook runs, no audit event is added and no
    hierarchy rule is checked beyond the file's shape (run ``check_invariants`` after a
    hand-edited file). The schema is applied first. A ``HopperRestore`` marker naming
    ``source`` (the file) is written first, in its own transaction (see ``restores``).
    Instances, then edges, then events are written in batches of ``batch_size``, each batch
    its own transaction, every node marked ``Restoring``: live writes refuse to touch such
    a node (RestoreInProgress). One last transaction takes the marks off, sets the event
    counter (to the larger of the exported counter and the highest seq) and removes the
    marker, so the graph goes live whole. If a batch fails, what was written is deleted
    again; if the process dies, the next import finds the marker, removes everything the
    unfinished restore left and whatever was written since, and says so
    (``removed_unfinished``).

    ``progress`` hears the rows written (instances, edges, events), batch by batch.

    Raises ValidationError for a file that is not a valid export, Conflict when the
    database is not empty.
    """
    instances, edges, events, event_seq, datetimes = _prepare(data)
    liens = _lien_rows(data, {row["id"] for row in instances})
    graph = Graph(driver, database)
    with translate_errors():
        apply_schema(driver, database)
    removed = remove_unfinished_import(graph, batch_size)
    counts = graph.read(_count_hopper_nodes)
    if any(counts.values()):
        raise Conflict(
            "import restores into an empty database only; this one holds "
            f"{counts['instances']} instance(s), {counts['events']} event(s) and "
            f"{counts['counters']} counter(s): empty it with `hopper-graph reset` (a "
            "development database) or import into a fresh one",
            instances=counts["instances"], events=counts["events"],
            counters=counts["counters"])
    written = _Tally(progress or _silent, len(instances) + len(edges) + len(events))
    graph.write(_run, QUERIES.begin_restore.text, {
        "started_at": datetime.now(UTC), "file": source, "host": socket.gethostname(),
        "pid": os.getpid(), "instance_count": len(instances), "event_count": len(events)})
    forget(driver, database)
    try:
        for batch in _batches(instances, batch_size):
            graph.write(_batch, QUERIES.import_instances.text,
                        {"rows": batch, "datetime_keys": datetimes["instances"]})
            written.add(len(batch))
        for batch in _batches(edges, batch_size):
            graph.write(_batch, QUERIES.import_parent_edges.text, {"rows": batch})
            written.add(len(batch))
        graph.write(_run, QUERIES.label_imported_projects.text)
        for batch in _batches(_labelled(instances), batch_size):
            graph.write(_batch, QUERIES.import_labels.text, {"rows": batch})
        for batch in _batches(events, batch_size):
            graph.write(_batch, QUERIES.import_events.text,
                        {"events": batch, "datetime_keys": datetimes["events"]})
            written.add(len(batch))
        for batch in _batches(liens, batch_size):
            graph.write(_batch, QUERIES.import_liens.text, {"rows": batch})
        graph.write(_finish, event_seq)
    except BaseException as exc:
        _undo(graph, batch_size, exc)
        raise
    finally:
        forget(driver, database)
    return ImportResult(len(instances), len(events), event_seq, removed)


def remove_unfinished_import(graph: Graph, batch_size: int = BATCH_SIZE) -> int:
    """Delete what an import that never finished left (a killed process leaves its marker
    and nodes marked Restoring) and, with the marker there, everything written since (an
    event counter, live writes): the restore began on an empty database. The marker goes
    last, so a second kill here leaves it to the next import. Returns the nodes removed.
    Conflict, removing nothing, when the marker is that of an import still running
    (:func:`refuse_if_running`)."""
    found = graph.read_rows(QUERIES.find_restore.text)[0]
    if not found["markers"] and not found["nodes"]:
        return 0
    refuse_if_running(found)
    query = QUERIES.remove_unfinished_batch if found["markers"] else QUERIES.remove_restore_batch
    removed = _drain(graph, query.text, batch_size)
    graph.write(_run, QUERIES.end_restore.text)
    forget(graph.driver, graph.database)
    log.warning("removed %d node(s) of an import begun at %s that never finished",
                removed, found["started_at"])
    return removed


def _finish(tx: ManagedTransaction, event_seq: int | None) -> None:
    """One transaction: the restored nodes go live, the counter is set, the marker goes."""
    tx.run(QUERIES.finish_restore.text).consume()
    if event_seq is not None:
        tx.run(QUERIES.import_event_counter.text, value=event_seq).consume()
    tx.run(QUERIES.end_restore.text).consume()


def _drain(graph: Graph, query: str, batch_size: int) -> int:
    """Run a batch statement until it reports nothing done; the total done."""
    total = 0
    while True:
        done = graph.write(_single, query, batch_size)
        total += done
        if done < batch_size:
            return total


def _single(tx: ManagedTransaction, query: str, limit: int) -> int:
    record = tx.run(query, limit=limit).single()
    return int(record["done"]) if record else 0


def _count_hopper_nodes(tx: ManagedTransaction) -> dict[str, int]:
    record = tx.run(QUERIES.count_hopper_nodes.text).single()
    assert record is not None
    return record.data()


def _run(tx: ManagedTransaction, query: str, params: dict[str, Any] | None = None) -> None:
    tx.run(query, params or {}).consume()


def _batch(tx: ManagedTransaction, query: str, params: dict[str, Any]) -> None:
    """One batch of a restore, and the note on its marker that it is still writing."""
    tx.run(query, params).consume()
    tx.run(QUERIES.restore_progress.text).consume()


LIVE_SECONDS = 60
"""How long after its last batch a restore run from another host counts as running (one
run from this host counts as running while its process lives, as long again at most)."""


def refuse_if_running(found: dict[str, Any]) -> None:
    """Conflict when the marker ``found`` (the row of ``find_restore``) is that of an
    import writing now: it noted a batch less than LIVE_SECONDS ago, and, when it runs on
    this host, its process is alive. (A marker that is older, or whose process is gone, is
    what a killed import left.)"""
    idle = found["idle_seconds"]
    if not found["markers"] or idle is None or idle > LIVE_SECONDS:
        return
    host, pid = found["host"], found["pid"]
    if host == socket.gethostname() and pid and not _alive(int(pid)):
        return
    running = UnfinishedRestore(started_at=found["started_at"], file=found["file"],
                                host=host, pid=pid, instances=None, events=None)
    raise Conflict(
        f"another import is running: {running.describe()}; its last batch was {idle} s "
        f"ago. Wait for it to finish (if it was killed, the next import after {LIVE_SECONDS}"
        " s without a batch removes what it left)", host=host, pid=pid,
        started_at=found["started_at"], idle_seconds=idle)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _undo(graph: Graph, batch_size: int, cause: BaseException) -> None:
    """Delete what a failed import wrote (every node it marked), or say it could not."""
    try:
        _drain(graph, QUERIES.remove_restore_batch.text, batch_size)
        graph.write(_run, QUERIES.end_restore.text)
    except Exception as exc:
        raise HopperGraphError(
            f"the import failed ({type(cause).__name__}: {cause}) and what it had written "
            f"could not be removed ({type(exc).__name__}): the next import removes it "
            "before it begins") from cause


def _batches(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


class _Problems:
    """Collects what is wrong with a file, keyed by the path of each bad field."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            path, messages = next(iter(self.errors.items()))
            count = sum(len(m) for m in self.errors.values())
            errors = dict(list(self.errors.items())[:_MAX_REPORTED])
            raise ValidationError(
                f"not a valid hopper-graph export: {count} problem(s), first: {path}: "
                f"{messages[0]}", errors=errors)


def _prepare(data: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                 list[dict[str, Any]], int | None, dict[str, list[str]]]:
    """Check an export's shape and turn it into the rows the import queries take."""
    problems = _Problems()
    if not isinstance(data, dict):
        problems.add("$", "must be a map")
        problems.raise_if_any()
    if data.get("format") != FORMAT:
        problems.add("format", f"must be {FORMAT!r}")
    if data.get("format_version") != FORMAT_VERSION:
        problems.add("format_version",
                     f"must be {FORMAT_VERSION} (this hopper-graph reads version "
                     f"{FORMAT_VERSION}), not {data.get('format_version')!r}")
    problems.raise_if_any()
    datetimes = _datetime_properties(data, problems)
    instances = _list(data, "instances", problems)
    events = _list(data, "events", problems)
    problems.raise_if_any()
    instance_rows, edges = _instance_rows(instances, datetimes["instances"], problems)
    unlinked = set(_list(data, "unlinked_event_ids", problems, required=False))
    event_rows = _event_rows(events, datetimes["events"], unlinked, problems)
    event_seq = data.get("event_seq")
    if event_seq is not None and (not isinstance(event_seq, int) or isinstance(event_seq, bool)
                                  or event_seq < 0):
        problems.add("event_seq", "must be a non-negative integer or null")
    problems.raise_if_any()
    highest = max((row["props"]["seq"] for row in event_rows), default=None)
    if highest is not None:
        event_seq = max(event_seq or 0, highest)
    return instance_rows, edges, event_rows, event_seq, {
        kind: sorted(keys) for kind, keys in datetimes.items()}


def _datetime_properties(data: dict[str, Any], problems: _Problems) -> dict[str, set[str]]:
    given = data.get("datetime_properties", DEFAULT_DATETIME_PROPERTIES)
    result: dict[str, set[str]] = {}
    for kind in ("instances", "events"):
        keys = given.get(kind, []) if isinstance(given, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            problems.add(f"datetime_properties.{kind}", "must be a list of property names")
            keys = []
        result[kind] = set(keys)
    return result


def _list(data: dict[str, Any], key: str, problems: _Problems, required: bool = True
          ) -> list[Any]:
    value = data.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        problems.add(key, "must be a list")
        return []
    return value


def _instance_rows(instances: list[Any], datetimes: set[str], problems: _Problems
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, edges = [], []
    seen: set[str] = set()
    names: dict[tuple[Any, ...], tuple[str, Any]] = {}
    for index, item in enumerate(instances):
        path = f"instances[{index}]"
        props = _props(item, path, _INSTANCE_REQUIRED, datetimes, problems, json_maps=True)
        if props is None:
            continue
        _check_enum(props, "scope", HopperScope, path, problems)
        _check_enum(props, "status", InstanceStatus, path, problems)
        _check_enum(props, "instance_type", InstanceType, path, problems)
        _check_int(props, "version", path, problems)
        _normalise_names(props, path, names, problems)
        instance_id = props["id"]
        if instance_id in seen:
            problems.add(f"{path}.id", f"{instance_id} appears twice")
        parent_id = props.get("parent_id")
        if parent_id is not None:
            if parent_id not in seen:
                problems.add(f"{path}.parent_id", "must name an instance earlier in the file "
                             "(parents come before their children)")
            edges.append({"parent_id": parent_id, "id": instance_id})
        seen.add(instance_id)
        _check_labels(props, path, problems)
        rows.append(props)
    return rows, edges


def _normalise_names(props: dict[str, Any], path: str,
                     names: dict[tuple[Any, ...], tuple[str, Any]],
                     problems: _Problems) -> None:
    """Name and project_id in NFC, as every write stores them (rules.nfc); two instances of
    the file whose names differ but are one in NFC are refused, naming both (``check``
    names such twins in a graph written before names were normalised). The same name
    twice is left to the database's constraint, as before."""
    raw = props.get("name")
    for field in ("name", "project_id"):
        if isinstance(props.get(field), str):
            props[field] = rules.nfc(props[field])
    key = (props.get("scope"), props.get("name"))
    if key in names and names[key][1] != raw:
        problems.add(f"{path}.name", f"{props.get('name')!r} in NFC is also the name of "
                     f"{names[key][0]}: names are compared in Unicode NFC")
    names.setdefault(key, (path, raw))


def _lien_rows(data: dict[str, Any], instance_ids: set[str]) -> list[dict[str, Any]]:
    """The file's liens (none when it has no ``liens``), each on an instance of the file,
    with an id, a reason and an RFC 3339 created_at."""
    problems = _Problems()
    rows, seen = [], set()
    for index, item in enumerate(_list(data, "liens", problems, required=False)):
        path = f"liens[{index}]"
        if not isinstance(item, dict):
            problems.add(path, "must be a map")
            continue
        for key in ("id", "instance_id", "reason"):
            if not isinstance(item.get(key), str) or not item[key]:
                problems.add(f"{path}.{key}", "is required: a non-empty string")
        for key in ("origin", "actor"):
            if item.get(key) is not None and not isinstance(item[key], str):
                problems.add(f"{path}.{key}", "must be a string")
        unknown = set(item) - {"id", "instance_id", "reason", "origin", "actor", "created_at"}
        for key in sorted(unknown):
            problems.add(f"{path}.{key}", "is not a property of a lien")
        if isinstance(item.get("instance_id"), str) and item["instance_id"] not in instance_ids:
            problems.add(f"{path}.instance_id", "must name an instance of the file")
        if item.get("id") in seen:
            problems.add(f"{path}.id", f"{item['id']} appears twice")
        seen.add(item.get("id"))
        created_at = _datetime(item.get("created_at"), f"{path}.created_at", problems)
        rows.append({**{k: v for k, v in item.items() if v is not None},
                     "created_at": created_at})
    problems.raise_if_any()
    return rows


def _check_labels(props: dict[str, Any], path: str, problems: _Problems) -> None:
    """An instance's labels, when it has any, hold to the labels' syntax."""
    text = props.get("labels")
    if not isinstance(text, str):
        return
    try:
        labels.check_labels(json.loads(text))
    except ValueError:
        problems.add(f"{path}.labels", "must be a map (or its JSON string)")
    except ValidationError as exc:
        for key, messages in exc.errors.items():
            problems.add(f"{path}.{key}", "; ".join(messages))


def _labelled(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The import_labels rows of the instances that carry labels."""
    rows = []
    for props in instances:
        pairs = labels.pairs(json.loads(props["labels"])) if isinstance(
            props.get("labels"), str) else []
        if pairs:
            rows.append({"id": props["id"], "label_pairs": pairs})
    return rows


def _event_rows(events: list[Any], datetimes: set[str], unlinked: set[Any],
                problems: _Problems) -> list[dict[str, Any]]:
    rows = []
    seen_ids: set[str] = set()
    seen_seqs: set[int] = set()
    for index, item in enumerate(events):
        path = f"events[{index}]"
        props = _props(item, path, _EVENT_REQUIRED, datetimes, problems, json_maps=False)
        if props is None:
            continue
        if _check_int(props, "seq", path, problems):
            if props["seq"] in seen_seqs:
                problems.add(f"{path}.seq", f"seq {props['seq']} appears twice")
            seen_seqs.add(props["seq"])
        if props["id"] in seen_ids:
            problems.add(f"{path}.id", f"{props['id']} appears twice")
        seen_ids.add(props["id"])
        rows.append({"props": props, "unlinked": props["id"] in unlinked})
    return rows


def _props(item: Any, path: str, required: tuple[str, ...], datetimes: set[str],
           problems: _Problems, json_maps: bool) -> dict[str, Any] | None:
    """The properties to store for one exported map, or None when it is unusable."""
    if not isinstance(item, dict):
        problems.add(path, "must be a map")
        return None
    missing = [key for key in required if item.get(key) is None]
    for key in missing:
        problems.add(f"{path}.{key}", "is required")
    if not isinstance(item.get("id"), str) or not item.get("id"):
        if "id" not in missing:
            problems.add(f"{path}.id", "must be a non-empty string")
        return None
    props: dict[str, Any] = {}
    for key, value in item.items():
        if not isinstance(key, str):
            problems.add(f"{path}.{key}", "property names must be strings")
        elif value is None:
            continue  # Neo4j stores no nulls: an absent property
        elif key in datetimes:
            props[key] = _datetime(value, f"{path}.{key}", problems)
        elif json_maps and key in JSON_PROPERTIES and not isinstance(value, str):
            props[key] = _dumps(value) if isinstance(value, dict | list) else None
            if props[key] is None:
                problems.add(f"{path}.{key}", "must be a map (or its JSON string)")
        elif _is_plain(value):
            props[key] = value
        else:
            problems.add(f"{path}.{key}", "must be a string, number, boolean or a list of "
                         "them (maps only in config, config_set, metadata and labels)")
    return props


def _datetime(value: Any, path: str, problems: _Problems) -> str | None:
    """An RFC 3339 string with an offset (the import query turns it into a DATETIME)."""
    if isinstance(value, datetime):  # YAML reads an unquoted timestamp as a datetime
        if value.tzinfo is None:
            problems.add(path, f"{value.isoformat()!r} has no UTC offset")
            return None
        return value.isoformat()
    text = value if isinstance(value, str) else ""
    match = _RFC3339.match(text)
    if match is None:
        problems.add(path, f"{value!r} is not an RFC 3339 date-time with an offset")
        return None
    try:  # the calendar: no 30 February; the fraction cut to what Python reads
        datetime.fromisoformat(match["main"] + (match["fraction"] or "")[:7]
                               + match["offset"].replace("Z", "+00:00"))
    except ValueError as exc:
        problems.add(path, f"{value!r} is not a valid date-time: {exc}")
        return None
    return text


_RFC3339 = re.compile(r"(?P<main>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?P<fraction>\.\d{1,9})?"
                      r"(?P<offset>Z|[+-]\d{2}:\d{2})(?P<zone>\[[A-Za-z0-9_+\-/]+\])?\Z")
"""RFC 3339 with an offset, optionally followed by a zone id (``...Z[UTC]``), as Neo4j
writes a DATETIME that carries one."""


def _check_enum(props: dict[str, Any], key: str, enum: type[Any], path: str,
                problems: _Problems) -> None:
    value = props.get(key)
    if value is not None and value not in {member.value for member in enum}:
        problems.add(f"{path}.{key}", f"{value!r} is not one of "
                     f"{', '.join(member.value for member in enum)}")


def _check_int(props: dict[str, Any], key: str, path: str, problems: _Problems) -> bool:
    value = props.get(key)
    if value is None:
        return False
    if not isinstance(value, int) or isinstance(value, bool):
        problems.add(f"{path}.{key}", "must be an integer")
        return False
    return True


# -- files and streams --------------------------------------------------------------------
def file_format(path: str | Path) -> str:
    """``json`` or ``yaml``, from the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ValidationError(f"{path}: unknown file type {suffix or '(none)'!r}; use .json, "
                          ".yaml or .yml", errors={"file": ["extension must be .json, "
                                                            ".yaml or .yml"]})


def sniff_format(text: str) -> str:
    """``json`` when the text starts (after blanks) as a JSON object does, else ``yaml``:
    an export in JSON always begins with ``{``, one in YAML with its first key."""
    return "json" if text.lstrip()[:1] == "{" else "yaml"


def write_export(data: dict[str, Any], path: str | Path, kind: str | None = None) -> None:
    """Write an export as JSON or YAML (``kind``, else by extension), atomically: a crash
    mid-write leaves any earlier file of that name as it was."""
    kind = kind or file_format(path)
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            dump_export(data, out, kind)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def dump_export(data: dict[str, Any], out: IO[str], kind: str) -> None:
    """Write an export to an open text stream (stdout, say) as ``json`` or ``yaml``."""
    if kind == "json":
        json.dump(data, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        yaml.dump(data, out, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True,
                  default_flow_style=False, width=100)


def read_export(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read an export written by ``write_export`` (or by hand) from JSON or YAML
    (``kind``, else by extension)."""
    kind = kind or file_format(path)
    with open(path, encoding="utf-8") as source:
        return load_export(source, kind, str(path))


def load_export(source: IO[str], kind: str | None = None, name: str = "the input"
                ) -> dict[str, Any]:
    """Read an export from an open text stream (stdin, say) as ``json`` or ``yaml``, or,
    with no ``kind``, as :func:`sniff_format` judges it; ``name`` names it in errors."""
    try:
        text = source.read()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                              errors={"file": ["not UTF-8 text"]}) from None
    kind = kind or sniff_format(text)
    try:
        data = json.loads(text) if kind == "json" else yaml.load(text, Loader=_YAML_LOADER)
    except (ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ValidationError(f"{name} is not valid {kind.upper()}: {detail}",
                              errors={"file": [detail]}) from None
    if not isinstance(data, dict):
        raise ValidationError(f"{name} does not hold a hopper-graph export (a map)",
                              errors={"file": ["must hold a map"]})
    return data


_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
