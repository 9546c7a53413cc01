"""Liens over REST: list, add and remove the liens that protect an instance.

``/api/v1/instances/{id}/liens``: GET lists them, POST adds one, and DELETE
``.../liens/{lien_id}`` removes one. While an instance has a lien, deleting it or any
ancestor (``?force=true`` too), archiving it and purging it answer 409
``instance-protected`` (hopper_graph/liens.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from api import access, guards
from api import schemas as s
from api.access import ADMIN, INSTANCE, READER, needs
from api.extension import manager
from api.guards import actor
from api.openapi import documented
from api.schemas import QUERY

blp = Blueprint("liens", __name__, url_prefix="/api/v1/instances",
                description="Liens: what protects an instance from delete, archive and purge.")
access.guard(blp)  # every operation below declares its role with @needs
blp.before_request(guards.check_body)

LIENS = "/<uuid:instance_id>/liens"
LOCATION = {"description": "The URL that removes the new lien (DELETE).",
            "schema": {"type": "string"}}


def no_query() -> Any:
    return blp.arguments(s.NoQuerySchema, as_kwargs=True, **QUERY)


@blp.route(LIENS)
class Liens(MethodView):
    @needs(READER, on=INSTANCE)
    @no_query()
    @blp.response(200, s.LienListSchema)
    @documented(blp, 404)
    def get(self, instance_id: UUID) -> Any:
        """An instance's liens, oldest first."""
        return {"items": manager().liens(str(instance_id))}

    @needs(ADMIN, on=INSTANCE)
    @no_query()
    @blp.arguments(s.LienCreateSchema)
    @blp.response(201, s.LienSchema, headers={"Location": LOCATION})
    @documented(blp, 400, 404, 409, 413, 415, 422, actor=True)
    def post(self, body: dict[str, Any], instance_id: UUID) -> Any:
        """Add a lien: until it is removed, deleting the instance or any ancestor (force
        too), archiving it and purging it are refused with 409 instance-protected.

        409 restore-in-progress while an import writes the instance."""
        lien = manager().add_lien(str(instance_id), body["reason"], body["origin"],
                                  actor=body.get("actor") or actor())
        return lien, {"Location": url_for(".remove_lien", instance_id=instance_id,
                                          lien_id=lien.id)}


@blp.route(f"{LIENS}/<uuid:lien_id>", methods=["DELETE"])
@needs(ADMIN, on=INSTANCE)
@no_query()
@blp.arguments(s.LienDeleteSchema, required=False)
@blp.response(200, s.LienSchema)
@documented(blp, 400, 404, 409, 413, 415, 422, actor=True)
def remove_lien(body: dict[str, Any], instance_id: UUID, lien_id: UUID) -> Any:
    """Remove a lien; answers it as it was. 404 names the lien when the instance has no
    lien of that id."""
    return manager().remove_lien(str(instance_id), str(lien_id),
                                 actor=body.get("actor") or actor())
