"""What every /api/v1 request passes before its view runs, and CORS on the way out.

- ``require_token``: with ``HOPPER_API_TOKEN`` set, ``Authorization: Bearer <token>``
  (compared in constant time) or 401 with ``WWW-Authenticate: Bearer``.
- ``check_body``: a body larger than ``HOPPER_MAX_CONTENT_LENGTH`` is 413, a body that is not
  JSON 415, malformed JSON 400, before any view or schema sees it.
- ``add_cors_headers``: only for the origins listed in ``HOPPER_CORS_ORIGINS`` (``*`` for
  any); without that setting no CORS header is ever sent.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, Unauthorized, UnsupportedMediaType

from api.errors import MalformedJSON

REALM = "hopper-graph"
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_REQUEST_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, X-Actor"
CORS_EXPOSED_HEADERS = "ETag, Location, Retry-After, WWW-Authenticate"


class TokenRequired(Unauthorized):
    """401 with an RFC 6750 challenge; ``error="invalid_token"`` when a credential was sent."""

    def __init__(self, challenge: str) -> None:
        super().__init__("This API needs 'Authorization: Bearer <token>'.")
        self.challenge = challenge

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("WWW-Authenticate", self.challenge)]


def require_token() -> None:
    token: str | None = current_app.config.get("HOPPER_API_TOKEN")
    if not token or request.method == "OPTIONS":  # CORS preflights carry no credentials
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                          token.encode()):
        return
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if scheme else "")
    raise TokenRequired(challenge)


def is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/")
                                              and mimetype.endswith("+json"))


def check_body() -> None:
    if request.method not in BODY_METHODS:
        return
    limit: int = current_app.config["HOPPER_MAX_CONTENT_LENGTH"]
    request.max_content_length = limit  # also bounds chunked bodies, which have no length
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The body may be at most {limit} bytes.")
    if not request.content_length and "chunked" not in request.headers.get(
            "Transfer-Encoding", ""):
        return
    if not is_json(request.mimetype):
        raise UnsupportedMediaType(
            f"Send the body as application/json, not {request.mimetype or 'untyped'}.")
    data = request.get_data(cache=True)
    try:
        json.loads(data)
    except RecursionError:
        raise MalformedJSON("The JSON body nests too deeply.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedJSON(f"The body is not valid JSON: {exc}") from None


def add_cors_headers(response: Response) -> Response:
    allowed: list[str] = current_app.config.get("HOPPER_CORS_ORIGINS") or []
    origin = request.headers.get("Origin")
    if not allowed or not origin:
        return response
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin.rstrip("/") in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    else:
        return response
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response
