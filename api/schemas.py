"""The marshmallow schemas of every request and response (and so of the OpenAPI document).

Request schemas check shape, types and bounds only: every indexed text field (``id``,
``parent_id``, ``name``, ``project_id``, the enums) has a type or length that Neo4j can index.
The library checks the rules (scope order, config keys, limits) and its errors name the same
field paths. Unknown fields are errors, and
so are unknown query parameters (``QuerySchema``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import (
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    validate,
    validates_schema,
)

from hopper_graph import HopperScope, InstanceStatus, InstanceType, labels, rules
from hopper_graph import purge as purging
from hopper_graph.cursors import MAX_CURSOR_LENGTH
from hopper_graph.errors import ValidationError as LibraryValidationError
from hopper_graph.liens import MAX_LIEN_REASON_LENGTH
from hopper_graph.lifecycle import EVENTS
from hopper_graph.rules import MAX_NAME_LENGTH, MAX_REASON_LENGTH, MAX_TEXT_LENGTH
from hopper_graph.validation import UNKNOWN_FIELD, StrictBoolean, unknown_field

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_OFFSET = 2_000_000_000
"""Cypher's SKIP and LIMIT take 32-bit values; the history page asks for ``limit + 1`` more."""
MAX_CURSOR = 2**62
"""The largest ``after`` of /events (seq is a 64-bit integer in Neo4j)."""
MAX_TREE_DEPTH = 100_000
"""The largest ``max_depth`` of /tree; deeper than any hierarchy can be."""
MAX_PURGE_AGE = 100 * 366 * 86400
"""The largest ``older_than_seconds`` of a purge: a century, older than any instance."""
DEFAULT_PURGE_LIMIT = purging.DEFAULT_LIMIT
"""The most candidates one purge examines, and its default."""


class UUIDString(fields.UUID):
    """A UUID in, its canonical lower-case string out (the library's ids are strings)."""

    def _deserialize(  # type: ignore[override]
            self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return str(super()._deserialize(value, attr, data, **kwargs))


def _enum(enum: Any, **kwargs: Any) -> fields.Enum:
    """An enum by value, typed as a string in the OpenAPI document (with ``by_value=True``
    apispec gives no type, and ReDoc shows "any")."""
    return fields.Enum(enum, by_value=fields.String, **kwargs)


class AnyCaseEnum(fields.Enum):
    """A request's enum value in any letter case (``project`` is ``PROJECT``), as the CLI
    takes it: the values are upper case, so the text is upper-cased before it is looked up."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            value = value.upper()
        return super()._deserialize(value, attr, data, **kwargs)


def _any_case(enum: Any, **kwargs: Any) -> AnyCaseEnum:
    """A request field taking ``enum``'s values in any letter case (documented so)."""
    values = ", ".join(m.value for m in enum)
    text = kwargs.pop("metadata", {}).get("description", "")
    note = f"One of: {values} (any letter case)."
    return AnyCaseEnum(enum, by_value=fields.String, **kwargs,
                       metadata={"description": f"{text} {note}".strip()})


def _described(text: str) -> dict[str, Any]:
    return {"metadata": {"description": text}}


# -- resources ------------------------------------------------------------------------------
class InstanceSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    scope = _enum(HopperScope)
    status = _enum(InstanceStatus)
    instance_type = _enum(InstanceType)
    parent_id = fields.UUID(allow_none=True)
    project_id = fields.String(allow_none=True)
    config = fields.Dict(keys=fields.String(), **_described(
        "The full config: the scope's defaults with this instance's overrides merged on."))
    metadata = fields.Dict(keys=fields.String())
    labels = fields.Dict(keys=fields.String(), values=fields.String(), **_described(
        "Label keys to values, Kubernetes' syntax: what ?selector= selects by."))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    stopped_at = fields.DateTime(allow_none=True)
    archived_at = fields.DateTime(allow_none=True)
    heartbeat_at = fields.DateTime(allow_none=True, **_described(
        "The runner's last heartbeat (null before the first). A heartbeat before started_at "
        "came from an earlier run and does not count toward health."))
    version = fields.Integer(**_described("Increments on every write; the ETag."))
    depth = fields.Integer(**_described("Distance from the root of the hierarchy (GLOBAL: 0)."))


class StatusChangeSchema(Schema):
    id = fields.UUID()
    event = fields.String()
    previous_status = _enum(InstanceStatus)
    status = _enum(InstanceStatus)
    cause = fields.UUID(allow_none=True, **_described(
        "The instance whose event caused this change (cascades only)."))


class InstanceLifecycleResponseSchema(Schema):
    id = fields.UUID()
    event = fields.String(validate=validate.OneOf(EVENTS))
    previous_status = _enum(InstanceStatus)
    status = _enum(InstanceStatus)
    at = fields.DateTime()
    cascaded = fields.List(fields.Nested(StatusChangeSchema), **_described(
        "Every change the event caused below the instance, in the order applied."))
    instance = fields.Nested(InstanceSchema)


class DeleteResponseSchema(Schema):
    id = fields.UUID()
    deleted = fields.List(fields.UUID(), **_described("Deleted ids, deepest first."))
    stopped = fields.List(fields.Nested(StatusChangeSchema), **_described(
        "Instances stopped first because of ?force=true."))


class PurgeItemSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    scope = fields.String(validate=validate.OneOf([s.value for s in HopperScope]))
    archived_at = fields.DateTime(allow_none=True)
    reason = fields.String(**_described(
        "Why it goes (e.g. past its retention) or why it stays (e.g. retention."
        "purge_archived is false, inside its retention period until ...)."))


class PurgeResponseSchema(Schema):
    dry_run = fields.Boolean(**_described("true: nothing was deleted; purged lists what "
                                          "would be."))
    purged = fields.List(fields.Nested(PurgeItemSchema), **_described(
        "Deleted instances (their history stays); with dry_run, what would be deleted."))
    kept = fields.List(fields.Nested(PurgeItemSchema), **_described(
        "ARCHIVED EPHEMERAL instances examined and kept, each with the reason."))
    more = fields.Boolean(**_described(
        "true: the purge stopped at its limit with candidates left; send cursor as after "
        "to go on past those examined."))
    cursor = fields.String(allow_none=True, **_described(
        "With more: where the next purge goes on (its after); null otherwise."))


class EventSchema(Schema):
    id = fields.UUID()
    seq = fields.Integer(**_described("Position in the change feed; the cursor of /events."))
    instance_id = fields.UUID()
    event = fields.String(**_described("create, update, delete, move, or a lifecycle event."))
    from_status = _enum(InstanceStatus, allow_none=True)
    to_status = _enum(InstanceStatus, allow_none=True)
    actor = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    cause = fields.UUID(allow_none=True)
    at = fields.DateTime()
    from_parent_id = fields.UUID(**_described("A move only: the parent the instance left."))
    to_parent_id = fields.UUID(**_described("A move only: the parent it went to."))

    @post_dump
    def _move_only(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The parents of a move are in a move's event alone (as InstanceEvent.to_dict)."""
        if data.get("event") != "move":
            data.pop("from_parent_id", None)
            data.pop("to_parent_id", None)
        return data


class EffectiveConfigSchema(Schema):
    id = fields.UUID()
    config = fields.Dict(keys=fields.String(), **_described(
        "The config the instance runs with, inherited keys filled in."))
    provenance = fields.Dict(keys=fields.String(), values=fields.String(), **_described(
        'Each dotted leaf key -> the id of the instance that set it, or "default".'))


class HealthCheckSchema(Schema):
    name = fields.String()
    status = fields.String(validate=validate.OneOf(("pass", "warn", "fail", "unknown")))
    detail = fields.String()


class HealthReportSchema(Schema):
    id = fields.UUID()
    status = fields.String(validate=validate.OneOf(("healthy", "degraded", "unhealthy",
                                                    "unknown")))
    instance_status = _enum(InstanceStatus)
    checks = fields.List(fields.Nested(HealthCheckSchema))
    subtree = fields.Dict(keys=fields.String(), values=fields.Integer(), allow_none=True,
                          **_described("With ?subtree=true: how many instances per health."))
    unhealthy = fields.List(fields.UUID(), **_described(
        "With ?subtree=true: up to 100 unhealthy ids."))


class HeartbeatSchema(Schema):
    """What a runner needs back from a heartbeat: whether it should go on running."""

    id = fields.UUID()
    status = _enum(InstanceStatus, **_described(
        "The instance's status now: a runner whose instance is no longer ACTIVE stops or "
        "pauses its work."))
    heartbeat_at = fields.DateTime(**_described("The heartbeat just recorded."))


class LivenessSchema(Schema):
    status = fields.String()
    version = fields.String()


class ReadinessSchema(Schema):
    status = fields.String()
    neo4j = fields.String()
    schema_version = fields.Integer()


# -- collections ----------------------------------------------------------------------------
class ItemsSchema(Schema):
    items = fields.List(fields.Nested(InstanceSchema))


_NEXT = _described("The cursor of the next page: pass it as ?after=. Null on the last "
                   "page.")


class InstancePageSchema(ItemsSchema):
    total = fields.Integer(allow_none=True, **_described(
        "Matching instances in all pages, when paging by offset; null when paging by "
        "cursor (counting costs every match)."))
    offset = fields.Integer()
    limit = fields.Integer()
    next = fields.String(allow_none=True, **_NEXT)
    next_offset = fields.Integer(allow_none=True, **_described(
        "The offset of the next page when paging by offset; null on the last page."))


class EventPageSchema(Schema):
    items = fields.List(fields.Nested(EventSchema))
    offset = fields.Integer()
    limit = fields.Integer()
    next = fields.String(allow_none=True, **_NEXT)
    next_offset = fields.Integer(allow_none=True)


class EventFeedSchema(Schema):
    items = fields.List(fields.Nested(EventSchema))
    after = fields.Integer(**_described("The cursor that was asked for."))
    next_after = fields.Integer(**_described("Pass this as ?after= to continue."))
    limit = fields.Integer()
    head = fields.Integer(**_described(
        "The seq of the newest event: pass it as ?after= (of this feed or of "
        "/events/stream) to see only what happens from now on."))


class TreeNodeSchema(Schema):
    instance = fields.Nested(InstanceSchema)
    children = fields.List(fields.Nested(lambda: TreeNodeSchema()))


class FlatTreeRowSchema(Schema):
    instance = fields.Nested(InstanceSchema)
    parent_id = fields.UUID(allow_none=True, **_described("null for the root of the tree."))
    depth = fields.Integer(**_described("Levels below the root of the tree (root: 0)."))


class InstanceTreeResponseSchema(Schema):
    root_id = fields.UUID()
    format = fields.String(validate=validate.OneOf(("nested", "flat")))
    max_depth = fields.Integer(allow_none=True)
    count = fields.Integer(**_described("Instances in the tree."))
    tree = fields.Nested(TreeNodeSchema, **_described("format=nested: the root node."))
    items = fields.List(fields.Nested(FlatTreeRowSchema), **_described(
        "format=flat: every node, parents before children."))


class ProblemSchema(Schema):
    """RFC 9457 problem details, with this API's extension members."""

    class Meta:
        unknown = INCLUDE  # documents that further extension members may appear

    type = fields.String(**_described("urn:hopper-graph:problem:<code>"))
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String(**_described("The request path."))
    code = fields.String(**_described("Stable machine-readable slug."))
    request_id = fields.String(**_described(
        "The request's X-Request-ID (the caller's, or one the server made)."))
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         **_described("Dotted field path -> messages."))
    current_status = _enum(InstanceStatus, **_described("Invalid transitions: the status."))
    allowed_events = fields.List(fields.String(), **_described(
        "Invalid transitions: the events allowed from current_status."))
    errors_omitted = fields.Integer(**_described(
        "How many messages were left out of errors (it lists at most 100)."))
    existing_id = fields.UUID(**_described(
        "global-already-exists, duplicate-name, duplicate-project: the instance that "
        "already holds the GLOBAL, the name or the project."))
    parent_id = fields.UUID(**_described("parent-not-active, parent-archived: the parent."))
    parent_status = _enum(InstanceStatus, **_described(
        "parent-not-active: the parent's status."))


# -- requests -------------------------------------------------------------------------------
MAX_HINTS = 100
"""Unknown fields given a hint, at most (a problem lists no more messages than this); a
body of many thousand unknown keys must not cost a string comparison each."""
_CREATED_WITH = "read-only: set when the instance is created"
_KEPT = "read-only: kept by the server"
SERVER_FIELDS = {
    "id": _CREATED_WITH, "depth": f"{_KEPT} (the distance from the root)",
    "created_at": _KEPT, "updated_at": _KEPT, "started_at": f"{_KEPT} (set by start)",
    "stopped_at": f"{_KEPT} (set by stop)", "archived_at": f"{_KEPT} (set by archive)",
    "heartbeat_at": f"{_KEPT} (POST /instances/{{id}}/heartbeat sets it)",
    "version": f"{_KEPT} (send If-Match to change an expected version only)",
}
"""Fields of an instance no request body may set, and why."""
FIXED_AT_CREATE = {field: _CREATED_WITH
                   for field in ("scope", "parent_id", "project_id", "instance_type")}


class RequestSchema(Schema):
    """A request body or query. A field it does not know is refused, and the message helps:
    a field of the instance that this request may not set says ``read-only: ...`` and why
    (``read_only``), and a near miss says which field was meant."""

    read_only: ClassVar[dict[str, str]] = {}

    def handle_error(self, error: ValidationError, data: Any, *, many: bool,
                     **kwargs: Any) -> None:
        if many or not isinstance(error.messages, dict):
            return
        unknown = [key for key, messages in error.messages.items()
                   if messages == [UNKNOWN_FIELD]]
        for key in unknown[:MAX_HINTS]:
            error.messages[key] = [self.unknown_field(str(key))]

    def unknown_field(self, name: str) -> str:
        """The message for ``name``, a field this schema does not take."""
        if name in self.read_only:
            return self.read_only[name]
        return unknown_field(name, (f.data_key or key for key, f in self.load_fields.items()))


class InstanceCreateSchema(RequestSchema):
    id = UUIDString(load_default=None, **_described("Optional; a new UUID when omitted."))
    name = fields.String(required=True, validate=validate.Length(1, MAX_NAME_LENGTH))
    scope = _any_case(HopperScope, required=True)
    parent_id = UUIDString(load_default=None, allow_none=True)
    project_id = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=MAX_TEXT_LENGTH), **_described(
        "Required for PROJECT; an ORCHESTRATION inherits its project's."))
    instance_type = _any_case(InstanceType, load_default=None, allow_none=True)
    config = fields.Dict(keys=fields.String(), load_default=None, allow_none=True,
                         **_described("Overrides merged over the scope's defaults."))
    metadata = fields.Dict(keys=fields.String(), load_default=None, allow_none=True)
    labels = fields.Dict(keys=fields.String(), load_default=None, allow_none=True, **_described(
        "Label keys to values (Kubernetes' syntax); each bad key is named in the errors."))

    read_only: ClassVar[dict[str, str]] = {**SERVER_FIELDS, "status": (
        "read-only: an instance starts CREATED; POST /instances/{id}/start starts it")}


class InstanceUpdateSchema(RequestSchema):
    name = fields.String(validate=validate.Length(1, MAX_NAME_LENGTH))
    config = fields.Dict(keys=fields.String(), **_described(
        "Merged into the stored overrides (a null value removes a key) unless replace."))
    metadata = fields.Dict(keys=fields.String(), **_described(
        "Merged into the stored metadata (a null value removes a key) unless replace."))
    labels = fields.Dict(keys=fields.String(), **_described(
        "Merged into the stored labels (a null value removes a key) unless replace."))
    status = _any_case(InstanceStatus, **_described(
        "The status to move to: performs the lifecycle event that leads there."))
    replace = StrictBoolean(load_default=False, **_described(
        "true: config and metadata replace what is stored instead of merging into it."))
    reason = fields.String(allow_none=True, validate=validate.Length(max=MAX_REASON_LENGTH))
    actor = fields.String(allow_none=True, validate=validate.Length(max=MAX_TEXT_LENGTH))

    read_only: ClassVar[dict[str, str]] = {**SERVER_FIELDS, **FIXED_AT_CREATE}

    @validates_schema
    def _something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not {"name", "config", "metadata", "labels", "status"} & data.keys():
            raise ValidationError(
                "give at least one of name, config, metadata, labels, status")


class LifecycleRequestSchema(RequestSchema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=MAX_REASON_LENGTH))
    actor = fields.String(allow_none=True, validate=validate.Length(max=MAX_TEXT_LENGTH),
                          **_described("Who asks; defaults to the X-Actor header."))


class PurgeRequestSchema(RequestSchema):
    dry_run = StrictBoolean(load_default=False, **_described(
        "true: delete nothing, list what would go and what stays."))
    older_than_seconds = fields.Integer(
        strict=True, load_default=None, allow_none=True,
        validate=validate.Range(0, MAX_PURGE_AGE),
        **_described("Purge what was archived at least this long ago, instead of each "
                     "instance's own retention.archived_ttl_seconds."))
    limit = fields.Integer(
        strict=True, load_default=DEFAULT_PURGE_LIMIT,
        validate=validate.Range(1, DEFAULT_PURGE_LIMIT),
        **_described("Examine at most this many candidates, oldest archive first."))
    after = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_CURSOR_LENGTH),
        **_described("The cursor of an earlier purge that answered more: go on after the "
                     "candidates it examined."))


QUERY: dict[str, Any] = {"location": "query", "error_status_code": 400, "unknown": RAISE}
"""``blp.arguments`` for query parameters: 400 ``invalid-query`` when one is wrong, and an
unknown one is refused (webargs would drop it silently: ``?forse=true`` would not force)."""


class QuerySchema(RequestSchema):
    """Query parameters: an unknown one is refused (400 ``invalid-query``), not ignored."""

    class Meta:
        unknown = RAISE


class NoQuerySchema(QuerySchema):
    """The query of an operation that takes no parameters."""


class FieldList(fields.String):
    """?fields=id,name,status: the instance fields a read returns, checked by the library's
    own list of them (id is always returned)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return rules.check_fields(["id", *(p.strip() for p in text.split(",") if p.strip())])
        except LibraryValidationError as exc:
            raise ValidationError(exc.errors["fields"]) from None


_FIELDS = _described("Return only these instance fields, comma-separated (id is always "
                     "returned): a tree view need not carry every config. One of: "
                     + ", ".join(rules.FIELDS) + ".")


class PageQuerySchema(QuerySchema):
    after = fields.String(load_default=None, validate=validate.Length(max=MAX_CURSOR_LENGTH),
                          **_described(
        "Page by cursor: the `next` of the previous page, or empty for the first page. "
        "Each page costs its own rows; prefer it to `offset`."))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_OFFSET),
                            **_described("Page by offset (with `total`), kept for "
                                         "compatibility: its cost grows with the offset."))
    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(1, MAX_PAGE))


_SELECTOR = _described(
    "Only instances whose labels match this label selector, Kubernetes' syntax: "
    "`team=infra,tier!=batch,env in (prod,staging),!legacy`. Malformed: 400 "
    "invalid-selector, naming the position.")


def _selector_field() -> fields.String:
    return fields.String(load_default=None, validate=validate.Length(max=labels.MAX_SELECTOR),
                         **_SELECTOR)


class InstancePageQuerySchema(PageQuerySchema):
    select = FieldList(load_default=None, data_key="fields", **_FIELDS)
    selector = _selector_field()


class InstanceListQuerySchema(InstancePageQuerySchema):
    scope = _any_case(HopperScope)
    status = _any_case(InstanceStatus)
    parent_id = UUIDString()
    project_id = fields.String(validate=validate.Length(max=MAX_TEXT_LENGTH))


class TreeQuerySchema(QuerySchema):
    max_depth = fields.Integer(load_default=None, validate=validate.Range(0, MAX_TREE_DEPTH),
                               **_described("Levels below the root to include (0: the root "
                                            "alone)."))
    format = fields.String(load_default="nested", validate=validate.OneOf(("nested", "flat")))
    select = FieldList(load_default=None, data_key="fields", **_FIELDS)
    selector = _selector_field()

    @validates_schema
    def _selector_is_flat(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A selector keeps the matches only, and a match's parent may not match: only
        rows can say that, not a nested tree."""
        if data.get("selector") and data.get("format") == "nested":
            raise ValidationError({"selector": [
                "needs ?format=flat: the nested tree cannot hold a match whose parent "
                "does not match"]})


class DeleteQuerySchema(QuerySchema):
    force = fields.Boolean(load_default=False, **_described(
        "Stop ACTIVE and PAUSED instances in the subtree first instead of refusing."))
    reason = fields.String(load_default=None, validate=validate.Length(max=MAX_REASON_LENGTH))


class HealthQuerySchema(QuerySchema):
    subtree = fields.Boolean(load_default=False)


class EventsQuerySchema(QuerySchema):
    after = fields.Integer(load_default=0, validate=validate.Range(0, MAX_CURSOR))
    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(1, MAX_PAGE))
    selector = _selector_field()


# -- the event stream (api/events.py) -----------------------------------------------------
class EventStreamQuerySchema(QuerySchema):
    after = fields.Integer(load_default=0, validate=validate.Range(0, MAX_CURSOR), **_described(
        "Start after this seq (0: from the first event). A Last-Event-ID header, which an "
        "EventSource sends when it reconnects, wins over it."))
    subtree = UUIDString(load_default=None, **_described(
        "Only the events of this instance and its descendants, deleted ones included."))
    selector = _selector_field()


class EventStreamHeadersSchema(Schema):
    """The one header the stream reads (the view checks it: a bad one is 400 bad-request)."""

    last_event_id = fields.String(load_default=None, data_key="Last-Event-ID", **_described(
        "The last seq received: the stream resumes after it (wins over ?after=). An "
        "EventSource sends it when it reconnects."))


# -- move (POST /instances/{id}/move) -------------------------------------------------------
class MoveRequestSchema(RequestSchema):
    parent_id = UUIDString(required=True, **_described("The new parent."))
    expected_parent_id = UUIDString(load_default=None, allow_none=True, **_described(
        "The parent the caller believes the instance has: if it is elsewhere, the move is "
        "refused (409 parent-mismatch, naming the current parent)."))
    reason = fields.String(allow_none=True, validate=validate.Length(max=MAX_REASON_LENGTH))
    actor = fields.String(allow_none=True, validate=validate.Length(max=MAX_TEXT_LENGTH),
                          **_described("Who asks; defaults to the X-Actor header."))


# -- liens (api/liens.py, hopper_graph/liens.py) ------------------------------------------
class LienSchema(Schema):
    id = fields.UUID()
    instance_id = fields.UUID()
    reason = fields.String()
    origin = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    created_at = fields.DateTime()


class LienListSchema(Schema):
    items = fields.List(fields.Nested(LienSchema), **_described("Oldest first."))


class LienCreateSchema(RequestSchema):
    reason = fields.String(required=True, validate=validate.Length(1, MAX_LIEN_REASON_LENGTH),
                           **_described("Why the instance must not go away."))
    origin = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=MAX_TEXT_LENGTH), **_described(
        "Who holds the lien (a system, a team, a ticket): who to ask before removing it."))
    actor = fields.String(allow_none=True, validate=validate.Length(max=MAX_TEXT_LENGTH),
                          **_described("Who asks; defaults to the X-Actor header."))


class LienDeleteSchema(RequestSchema):
    actor = fields.String(allow_none=True, validate=validate.Length(max=MAX_TEXT_LENGTH),
                          **_described("Who asks; defaults to the X-Actor header."))
