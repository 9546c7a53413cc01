"""The /api/v1/events blueprint: the durable change feed, read by cursor."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api import guards
from api import schemas as s
from api.extension import manager
from api.http import QUERY, documented

blp = Blueprint("events", __name__, url_prefix="/api/v1/events",
                description="The change feed: every audit event, in commit order.")
blp.before_request(guards.require_token)
blp.before_request(guards.check_body)


@blp.route("")
@blp.arguments(s.EventsQuerySchema, **QUERY)
@blp.response(200, s.EventFeedSchema)
@documented(blp)
def events(query: dict[str, Any]) -> Any:
    """Audit events with ``seq`` greater than ?after=, oldest first.

    Keep ``next_after`` and pass it as ?after= next time: nothing is missed or seen twice.
    """
    items = manager().events_since(query["after"], query["limit"])
    next_after = items[-1].seq if items else query["after"]
    return {"items": items, "after": query["after"], "next_after": next_after,
            "limit": query["limit"]}
