"""Who may call what: each /api/v1 operation declares the role it needs and where its
target instance is, and every request is checked against that before its view runs.

Declaring an operation is one line under its ``@blp.route``::

    @blp.route(f"{ID}/move", methods=["POST"])
    @needs(ADMIN, on=INSTANCE)          # admin on the instance in the path
    ...
    def move(...): ...

(for a ``MethodView``, on each method). ``on`` says where the target is:

- ``INSTANCE``: the ``instance_id`` of the path (``in_path("other_id")`` for another name);
- ``PARENT``: the ``parent_id`` of the JSON body (a create: the role is needed on the
  parent; no parent means the whole graph);
- ``GRAPH``: the whole graph (purge, the GLOBAL instance): only ``HOPPER_API_TOKEN`` or a
  token on the GLOBAL instance reaches it;
- ``OWN_SUBTREE``: a listing or feed the view itself cuts to the token's subtree (it
  calls :func:`within`).

A view with a second target (a move's new parent) checks it itself with
:func:`require`, e.g. ``require(ADMIN, body["parent_id"])``.

An operation without a declaration fails closed: ``check_declared`` refuses to start an app
with one, and a request that reaches one anyway is a 500, never served.

Who is asking (``authenticate``): with ``HOPPER_API_TOKEN`` unset, nobody is checked and the
API is open, as it always was; scoped tokens are then not enforced (``init_app`` logs a
warning when the graph holds any). With it set, every guarded request needs
``Authorization: Bearer`` and either that token (admin of the whole graph) or a scoped
token's secret (hopper_graph/tokens.py) in force; otherwise 401 with
``WWW-Authenticate: Bearer``. A token whose role or subtree does not reach is a 403
``forbidden`` problem naming the role and root it would need, and an id outside the
subtree is refused the same whether or not it exists.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, g, request
from werkzeug.exceptions import InternalServerError, Unauthorized

from api.extension import manager
from hopper_graph.tokens import PREFIX, WHOLE_GRAPH_ADMIN, Grant, Role, forbidden

log = logging.getLogger("hopper_graph.api")

F = TypeVar("F", bound=Callable[..., Any])
REALM = "hopper-graph"
READER, OPERATOR, ADMIN = Role.READER, Role.OPERATOR, Role.ADMIN
ATTRIBUTE = "hopper_access"
"""Where :func:`needs` leaves an operation's declaration on its view function."""


class _Whole:
    """The target of an operation on the whole graph."""

    def __repr__(self) -> str:
        return "GRAPH"


class _Own:
    """The target of a listing cut to the token's own subtree."""

    def __repr__(self) -> str:
        return "OWN_SUBTREE"


WHOLE, OWN = _Whole(), _Own()
Target = str | _Whole | _Own


def in_path(name: str = "instance_id") -> Callable[[], Target]:
    """The target is the instance whose id is the path's ``name``."""
    def target() -> Target:
        return str((request.view_args or {})[name])
    target.__name__ = f"in_path({name!r})"
    return target


def _parent() -> Target:
    """The create's parent (``parent_id`` of the body); none given: the whole graph. A
    parent_id that is not text is refused by the schema later: here it reaches nothing
    but the whole graph."""
    body = request.get_json(silent=True)
    parent = body.get("parent_id") if isinstance(body, dict) else None
    return parent if isinstance(parent, str) else WHOLE


INSTANCE = in_path()
PARENT = _parent
GRAPH: Callable[[], Target] = lambda: WHOLE  # noqa: E731
OWN_SUBTREE: Callable[[], Target] = lambda: OWN  # noqa: E731


@dataclass(frozen=True)
class Needs:
    role: Role
    on: Callable[[], Target]


def needs(role: Role, *, on: Callable[[], Target]) -> Callable[[F], F]:
    """Declare the role an operation needs and where its target is."""
    def decorator(func: F) -> F:
        setattr(func, ATTRIBUTE, Needs(role, on))
        return func
    return decorator


class TokenRequired(Unauthorized):
    """401 with an RFC 6750 challenge; ``error="invalid_token"`` when a credential was sent."""

    def __init__(self, challenge: str) -> None:
        super().__init__("This API needs 'Authorization: Bearer <token>'.")
        self.challenge = challenge

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("WWW-Authenticate", self.challenge)]


def guard(blueprint: Blueprint) -> None:
    """Check every request of ``blueprint`` (and mark it, for :func:`check_declared`)."""
    blueprint.before_request(authorize)
    GUARDED.add(blueprint.name)


GUARDED: set[str] = set()
"""The names of the guarded blueprints."""


def authorize() -> None:
    """Who asks, then whether the operation's declaration lets them."""
    if request.method == "OPTIONS":  # CORS preflights carry no credentials
        return
    grant = authenticate()
    declared = declaration(current_app, request.endpoint, request.method)
    if declared is None:
        log.error("%s %s: endpoint %s declares no access rule (api/access.py)",
                  request.method, request.path, request.endpoint)
        raise InternalServerError()
    g.hopper_grant = grant
    if grant is None or grant is WHOLE_GRAPH_ADMIN:
        return
    target = declared.on()
    if target is OWN:  # the view cuts the answer to the subtree: the role is enough
        if grant.role < declared.role:
            raise forbidden(grant, declared.role, grant.root_id)
        return
    manager().tokens.authorize(grant, declared.role,
                               None if isinstance(target, _Whole) else str(target))


def authenticate() -> Grant | None:
    """The grant of the request's bearer token; None when the API is open (no
    ``HOPPER_API_TOKEN``); 401 when the token is missing or no token in force."""
    token: str | None = current_app.config.get("HOPPER_API_TOKEN")
    if not token:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer":
        if hmac.compare_digest(given.encode(), token.encode()):
            return WHOLE_GRAPH_ADMIN
        if given.startswith(PREFIX):
            grant = manager().tokens.authenticate(given)
            if grant is not None:
                return grant
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if scheme else "")
    raise TokenRequired(challenge)


def within() -> str | None:
    """The root of the subtree the request may see; None for the whole graph."""
    grant: Grant | None = g.get("hopper_grant")
    return None if grant is None or grant.whole_graph else grant.root_id


def require(role: Role, instance_id: str | None) -> None:
    """For a view with a second target (a move's new parent, a filter's instance): 403
    unless the request's token holds ``role`` on ``instance_id`` (None: the whole graph)."""
    grant: Grant | None = g.get("hopper_grant")
    if grant is not None and grant is not WHOLE_GRAPH_ADMIN:
        manager().tokens.authorize(grant, role, instance_id)


def check_within(instance_id: str) -> None:
    """403 unless the request's token may read ``instance_id`` (a filter's instance)."""
    require(READER, instance_id)


def declaration(app: Flask, endpoint: str | None, method: str) -> Needs | None:
    """What the operation behind ``endpoint`` and ``method`` declared (None: nothing)."""
    view = app.view_functions.get(endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        name = "get" if method == "HEAD" else method.lower()
        view = getattr(view_class, name, None)
    return getattr(view, ATTRIBUTE, None)


def check_declared(app: Flask) -> None:
    """Refuse to start an app in which a guarded operation declares no access rule."""
    missing = [f"{method} {rule.rule} ({rule.endpoint})"
               for rule in app.url_map.iter_rules()
               if rule.endpoint.partition(".")[0] in GUARDED
               for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
               if declaration(app, rule.endpoint, method) is None]
    if missing:
        raise RuntimeError("operations without an access rule (declare one with "
                           "api.access.needs): " + ", ".join(missing))


def warn_if_unenforced(app: Flask) -> None:
    """Scoped tokens are checked only when HOPPER_API_TOKEN is set: say so when the graph
    holds tokens in force that an open server would ignore."""
    if app.config.get("HOPPER_API_TOKEN"):
        return
    try:
        in_force, _ = app.extensions["hopper_graph"].manager.tokens.counts()
    except Exception:
        return
    if in_force:
        log.warning("the graph holds %d scoped token(s), but HOPPER_API_TOKEN is not set: "
                    "the API is open and they are not enforced", in_force)
