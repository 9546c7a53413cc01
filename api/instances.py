"""The /api/v1/instances blueprint: CRUD, lifecycle, hierarchy, audit, config and health.

Every view calls the library's ``InstanceManager`` and nothing else. Path ids must be UUIDs
(werkzeug's ``uuid`` converter): anything else is an unknown URL (404), which is also why
``/instances/global`` and ``/instances/projects/...`` can never be taken for an id.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from api import access, guards
from api import schemas as s
from api.access import ADMIN, GRAPH, INSTANCE, OPERATOR, OWN_SUBTREE, PARENT, READER, needs, within
from api.etag import ETAG_HEADER, conditional_get, etag, expected_version
from api.extension import manager
from api.guards import actor
from api.openapi import LOCATION_HEADER, documented
from api.render import items_response, lean_tree_response, page_response, tree_response
from api.schemas import QUERY
from hopper_graph import HopperScope, InstanceSpec, NotFound
from hopper_graph.enums import EVENT_SUMMARIES
from hopper_graph.lifecycle import EVENTS

blp = Blueprint("instances", __name__, url_prefix="/api/v1/instances",
                description="Hopper instances: hierarchy, lifecycle, configuration, audit.")
access.guard(blp)  # every operation below declares its role with @needs
blp.before_request(guards.check_body)
blp.after_request(conditional_get)

ID = "/<uuid:instance_id>"
ETAG = {"ETag": ETAG_HEADER}


def no_query() -> Any:
    """For operations without query parameters: any parameter given is refused."""
    return blp.arguments(s.NoQuerySchema, as_kwargs=True, **QUERY)


@blp.route("")
class Instances(MethodView):
    @needs(READER, on=OWN_SUBTREE)
    @blp.arguments(s.InstanceListQuerySchema, **QUERY)
    @blp.response(200, s.InstancePageSchema)
    @documented(blp)
    def get(self, query: dict[str, Any]) -> Any:
        """List instances (filters: scope, status, parent_id, project_id, a label selector),
        a page at a time."""
        return page_response(manager().list(fields=query.pop("select"), within=within(),
                                            **query))

    @needs(OPERATOR, on=PARENT)
    @no_query()
    @blp.arguments(s.InstanceCreateSchema)
    @blp.response(201, s.InstanceSchema, headers={**ETAG, "Location": LOCATION_HEADER})
    @documented(blp, 400, 409, 413, 415, 422, actor=True)
    def post(self, body: dict[str, Any]) -> Any:
        """Create an instance.

        The scope's rules apply: GLOBAL is the one root, PROJECT needs a project_id and a
        GLOBAL or PROJECT parent, ORCHESTRATION a PROJECT or ORCHESTRATION parent.
        """
        instance = manager().create(InstanceSpec(**body), actor=actor())
        location = url_for(".Instance", instance_id=instance.id)
        return instance, {"Location": location, **etag(instance)}


@blp.route("/purge", methods=["POST"])
@needs(ADMIN, on=OWN_SUBTREE)
@no_query()
@blp.arguments(s.PurgeRequestSchema, required=False)
@blp.response(200, s.PurgeResponseSchema)
@documented(blp, 400, 413, 415, 422, actor=True)
def purge(body: dict[str, Any]) -> Any:
    """Purge ARCHIVED EPHEMERAL instances past their retention; dry_run only lists them.

    The answer lists what was purged (or would be) and what was kept, each with the
    reason, and with more and cursor whether it stopped at its limit and where to go on.
    Without a body, a real purge by each instance's own retention. A scoped admin token
    purges in its own subtree only.
    """
    seconds = body.get("older_than_seconds")
    older_than = timedelta(seconds=seconds) if seconds is not None else None
    return manager().purge(older_than, dry_run=body.get("dry_run", False), actor=actor(),
                           limit=body.get("limit", s.DEFAULT_PURGE_LIMIT),
                           after=body.get("after"), within=within())


@blp.route(ID)
class Instance(MethodView):
    @needs(READER, on=INSTANCE)
    @no_query()
    @blp.response(200, s.InstanceSchema, headers=ETAG)
    @documented(blp, 404)
    def get(self, instance_id: UUID) -> Any:
        """Get an instance (If-None-Match with its ETag answers 304)."""
        instance = manager().get(str(instance_id))
        return instance, etag(instance)

    @needs(OPERATOR, on=INSTANCE)
    @no_query()
    @blp.arguments(s.InstanceUpdateSchema)
    @blp.response(200, s.InstanceSchema, headers=ETAG)
    @documented(blp, 400, 404, 409, 412, 413, 415, 422, if_match=True, actor=True)
    def patch(self, changes: dict[str, Any], instance_id: UUID) -> Any:
        """Change name, config, metadata, labels and/or status.

        ``status`` performs the lifecycle event that leads there from the current status
        (e.g. PAUSED -> ACTIVE is resume). Config, metadata and labels merge into what is
        stored (null removes a key) unless ``replace`` is true.
        """
        instance_id_ = str(instance_id)
        fields = {k: changes[k] for k in ("name", "config", "metadata", "labels", "status",
                                          "reason") if k in changes}
        instance = manager().update(
            instance_id_, replace=changes.get("replace", False),
            actor=changes.get("actor") or actor(),
            expected_version=expected_version(instance_id_), **fields)
        return instance, etag(instance)

    @needs(ADMIN, on=INSTANCE)
    @blp.arguments(s.DeleteQuerySchema, **QUERY)
    @blp.response(200, s.DeleteResponseSchema)
    @documented(blp, 404, 409, 412, if_match=True, actor=True)
    def delete(self, query: dict[str, Any], instance_id: UUID) -> Any:
        """Delete an instance and its subtree; their history stays.

        Refused (409) while anything in the subtree is ACTIVE or PAUSED, unless
        ``?force=true``, which stops them first; and refused (409 instance-protected),
        force or not, while anything in it has a lien (/instances/{id}/liens).
        """
        return manager().delete(str(instance_id), force=query["force"], actor=actor(),
                                reason=query["reason"],
                                expected_version=expected_version(str(instance_id)))


def _lifecycle_view(event: str) -> Any:
    def view(body: dict[str, Any], instance_id: UUID) -> Any:
        instance_id_ = str(instance_id)
        result = manager().transition(
            instance_id_, event, actor=body.get("actor") or actor(), reason=body.get("reason"),
            expected_version=expected_version(instance_id_))
        return result, etag(result.instance)

    view.__name__ = f"{event}_instance"
    view.__doc__ = EVENT_SUMMARIES[event]
    return view


for _event in EVENTS:
    blp.route(f"{ID}/{_event}", methods=["POST"])(no_query()(
        blp.arguments(s.LifecycleRequestSchema, required=False)(
            blp.response(200, s.InstanceLifecycleResponseSchema, headers=ETAG)(
                documented(blp, 400, 404, 409, 412, 413, 415, 422, if_match=True,
                           actor=True)(needs(OPERATOR, on=INSTANCE)(_lifecycle_view(_event)))))))


@blp.route(f"{ID}/move", methods=["POST"])
@needs(ADMIN, on=INSTANCE)
@no_query()
@blp.arguments(s.MoveRequestSchema)
@blp.response(200, s.InstanceSchema, headers=ETAG)
@documented(blp, 400, 404, 409, 412, 413, 415, 422, if_match=True, actor=True)
def move(body: dict[str, Any], instance_id: UUID) -> Any:
    """Move an instance, with its subtree, under a new parent.

    The create rules hold at the new place; never under itself or a descendant; a GLOBAL
    never moves; an ACTIVE or PAUSED instance only under an ACTIVE parent. With
    ``expected_parent_id``, refused (409 parent-mismatch) unless that is the current parent.
    """
    instance_id_ = str(instance_id)
    access.require(ADMIN, body["parent_id"])  # the token must reach the new place too
    instance = manager().move(
        instance_id_, body["parent_id"], expected_parent_id=body["expected_parent_id"],
        actor=body.get("actor") or actor(), reason=body.get("reason"),
        expected_version=expected_version(instance_id_))
    return instance, etag(instance)


@blp.route(f"{ID}/children")
@needs(READER, on=INSTANCE)
@blp.arguments(s.InstancePageQuerySchema, **QUERY)
@blp.response(200, s.InstancePageSchema)
@documented(blp, 404)
def children(query: dict[str, Any], instance_id: UUID) -> Any:
    """List an instance's direct children, in creation order, a page at a time."""
    return page_response(manager().children_page(str(instance_id),
                                                 fields=query.pop("select"), **query))


@blp.route(f"{ID}/ancestors")
@needs(READER, on=INSTANCE)
@no_query()
@blp.response(200, s.ItemsSchema)
@documented(blp, 404)
def ancestors(instance_id: UUID) -> Any:
    """List an instance's ancestors, nearest first (parent, grandparent, ..., root)."""
    return items_response(up_to_root(manager().get_ancestors(str(instance_id))))


@blp.route(f"{ID}/descendants")
@needs(READER, on=INSTANCE)
@blp.arguments(s.InstancePageQuerySchema, **QUERY)
@blp.response(200, s.InstancePageSchema)
@documented(blp, 404)
def descendants(query: dict[str, Any], instance_id: UUID) -> Any:
    """List everything below an instance, level by level, a page at a time."""
    return page_response(manager().descendants_page(str(instance_id),
                                                    fields=query.pop("select"), **query))


@blp.route(f"{ID}/tree")
@needs(READER, on=INSTANCE)
@blp.arguments(s.TreeQuerySchema, **QUERY)
@blp.response(200, s.InstanceTreeResponseSchema)
@documented(blp, 404)
def tree(query: dict[str, Any], instance_id: UUID) -> Any:
    """The subtree under an instance: nested (``tree``) or, with ?format=flat, as rows
    (``items``, parents first). Any depth works; ?max_depth= cuts it."""
    if query["select"] is not None:
        lean = manager().get_tree_fields(str(instance_id), query["select"], query["max_depth"],
                                         selector=query["selector"])
        return lean_tree_response(lean, query["format"], query["max_depth"], str(instance_id))
    rows = manager().get_flat_tree(str(instance_id), query["max_depth"],
                                   selector=query["selector"])
    return tree_response(rows, query["format"], query["max_depth"], str(instance_id))


@blp.route("/global")
@needs(READER, on=GRAPH)
@no_query()
@blp.response(200, s.InstanceSchema, headers=ETAG)
@documented(blp, 404)
def global_instance() -> Any:
    """Get the GLOBAL instance (404 while there is none)."""
    instance = manager().get_global_instance()
    if instance is None:
        raise NotFound("there is no GLOBAL instance yet")
    return instance, etag(instance)


@blp.route("/projects/<project_id>")
@needs(READER, on=OWN_SUBTREE)
@blp.arguments(s.InstancePageQuerySchema, **QUERY)
@blp.response(200, s.InstancePageSchema)
@documented(blp)
def project_instances(query: dict[str, Any], project_id: str) -> Any:
    """List the PROJECT instances (sub-projects included) of a project, a page at a time."""
    return page_response(manager().list(project_id=project_id, scope=HopperScope.PROJECT,
                                        fields=query.pop("select"), within=within(),
                                        **query))


@blp.route("/projects/<project_id>/orchestrations")
@needs(READER, on=OWN_SUBTREE)
@blp.arguments(s.InstancePageQuerySchema, **QUERY)
@blp.response(200, s.InstancePageSchema)
@documented(blp)
def project_orchestrations(query: dict[str, Any], project_id: str) -> Any:
    """List the ORCHESTRATION instances of a project, a page at a time."""
    return page_response(manager().list(project_id=project_id,
                                        scope=HopperScope.ORCHESTRATION,
                                        fields=query.pop("select"), within=within(),
                                        **query))


@blp.route(f"{ID}/history")
@needs(READER, on=INSTANCE)
@blp.arguments(s.PageQuerySchema, **QUERY)
@blp.response(200, s.EventPageSchema)
@documented(blp, 404)
def history(query: dict[str, Any], instance_id: UUID) -> Any:
    """An instance's audit events, oldest first, a page at a time (also once deleted)."""
    page = manager().history_page(str(instance_id), query["offset"], query["limit"],
                                  query["after"])
    return {"items": page.items, "offset": page.offset, "limit": page.limit,
            "next": page.next, "next_offset": None if page.next is None or query["after"]
            is not None else page.offset + page.limit}


@blp.route(f"{ID}/config/effective")
@needs(READER, on=INSTANCE)
@no_query()
@blp.response(200, s.EffectiveConfigSchema)
@documented(blp, 404)
def effective_config(instance_id: UUID) -> Any:
    """The config an instance runs with, and where each key came from."""
    return manager().effective_config(str(instance_id))


@blp.route(f"{ID}/health")
@needs(READER, on=INSTANCE)
@blp.arguments(s.HealthQuerySchema, **QUERY)
@blp.response(200, s.HealthReportSchema)
@documented(blp, 404)
def health(query: dict[str, Any], instance_id: UUID) -> Any:
    """An instance's health and its checks; ?subtree=true rolls up the whole subtree."""
    return manager().health_check(str(instance_id), subtree=query["subtree"])


@blp.route(f"{ID}/heartbeat", methods=["POST"])
@needs(OPERATOR, on=INSTANCE)
@no_query()
@blp.response(200, s.HeartbeatSchema)
@documented(blp, 404, 409, 413, 415)
def heartbeat(instance_id: UUID) -> Any:
    """Record that the instance's runner is alive (refused once ARCHIVED); answers the
    status the runner acts on, not the whole instance."""
    instance = manager().heartbeat(str(instance_id))
    return {"id": instance.id, "status": instance.status, "heartbeat_at": instance.heartbeat_at}


def up_to_root(ancestors: list[Any]) -> list[Any]:
    """The ancestors (nearest first) a scoped token may see: up to its root, not above."""
    root = within()
    if root is None:
        return ancestors
    ids = [a.id for a in ancestors]
    return ancestors[:ids.index(root) + 1] if root in ids else []
