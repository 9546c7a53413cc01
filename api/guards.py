"""What every /api/v1 request passes before its view runs, and CORS on the way out.

- ``require_token``: with ``HOPPER_API_TOKEN`` set, ``Authorization: Bearer <token>``
  (compared in constant time) or 401 with ``WWW-Authenticate: Bearer``.
- ``check_body``: a body larger than ``HOPPER_MAX_CONTENT_LENGTH`` is 413, a body that is not
  JSON 415, malformed JSON 400 (``NaN``, ``Infinity`` and numbers too large for a float
  included), before any view or schema sees it. The parsed body is then walked once: a
  string with an unpaired UTF-16 surrogate is 400 ``invalid-text``, nesting deeper than
  ``MAX_NESTING`` levels or an integer beyond 64 bits 422 ``validation-error``, each naming
  the field, because the Neo4j driver could not carry either.
- ``actor``: who asks, from the ``X-Actor`` header, cut to the library's limit.
- ``init_cors``: flask-cors, only for the origins listed in ``HOPPER_CORS_ORIGINS`` (``*``
  for any); without that setting no CORS header is ever sent.
"""

from __future__ import annotations

import codecs
import hmac
import json
import math
import re
from typing import Any

from flask import Flask, current_app, request
from flask_cors import CORS
from werkzeug.exceptions import RequestEntityTooLarge, Unauthorized, UnsupportedMediaType

from api.errors import BodyOutOfBounds, InvalidText, MalformedJSON
from hopper_graph.errors import ValidationError
from hopper_graph.rules import MAX_TEXT_LENGTH

REALM = "hopper-graph"
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CORS_METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "X-Actor",
                        "X-Request-ID"]
CORS_EXPOSED_HEADERS = ["ETag", "Hopper-Bookmark", "Location", "Retry-After",
                        "WWW-Authenticate", "X-Request-ID"]
MAX_NESTING = 64
"""Levels of objects and arrays a body may nest (the body itself is level 1)."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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
    """The request's own input, before any view reads it: the X-Actor header (first, so a
    request that is wrong there is told so whatever else it holds), then the body."""
    if request.method not in BODY_METHODS:
        return
    actor()
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
    _check_encoding(data)
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_no_constant,
                          parse_float=_finite_float)
    except RecursionError:
        raise MalformedJSON("The JSON body nests too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, and the two above
        raise MalformedJSON(f"The body is not valid JSON: {exc}") from None
    check_values(body)


def _check_encoding(data: bytes) -> None:
    """JSON between systems is UTF-8 without a byte order mark (RFC 8259, 8.1). Say so
    when a body is not: Python's parser refuses a BOM, and would read UTF-16 here that
    the framework's own parser, run next, cannot (a misleading "invalid query" then)."""
    if data.startswith(codecs.BOM_UTF8):
        raise MalformedJSON("The body starts with a UTF-8 byte order mark: send the JSON as "
                            "UTF-8 without one (RFC 8259, section 8.1).")
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or b"\x00" in data[:4]:
        raise MalformedJSON("The body is not UTF-8 (it looks like UTF-16 or UTF-32): send the "
                            "JSON as UTF-8 (RFC 8259, section 8.1).")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def check_values(body: Any) -> None:
    """Walk a parsed body once, without recursion: 422 for nesting deeper than MAX_NESTING
    or an integer beyond 64 bits, 400 for a string (value or key) with an unpaired
    surrogate. The error names the field: its dotted path, or for nesting the top-level
    member it is under."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, (dict, list)):
            if len(path) >= MAX_NESTING:
                raise BodyOutOfBounds(
                    f"The body nests deeper than {MAX_NESTING} levels.",
                    {_field(path[:1]): [f"nests deeper than {MAX_NESTING} levels"]})
            if isinstance(value, dict):
                for key, item in value.items():
                    if not _is_text(key):
                        raise InvalidText({_field((*path, key)): [_SURROGATE]})
                    stack.append((item, (*path, key)))
            else:
                stack.extend((item, (*path, k)) for k, item in enumerate(value))
        elif isinstance(value, str) and not _is_text(value):
            raise InvalidText({_field(path): [_SURROGATE]})
        elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise BodyOutOfBounds("A number in the body is too large.",
                                  {_field(path): ["Must fit in 64 bits."]})


_SURROGATE = "holds an unpaired UTF-16 surrogate; send valid Unicode text"


def _is_text(text: str) -> bool:
    """Whether ``text`` is Unicode the driver can send as UTF-8 (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field(path: tuple[Any, ...]) -> str:
    """A dotted field path (surrogates in keys shown as escapes); ``_schema`` for the body."""
    if not path:
        return "_schema"
    return ".".join(str(part).encode("utf-8", "backslashreplace").decode() for part in path)


def init_cors(app: Flask) -> None:
    """CORS by flask-cors, for the origins in ``HOPPER_CORS_ORIGINS`` only (``*`` for any).

    Without that setting no CORS header is ever sent. Each origin is matched exactly (case
    aside, a trailing slash tolerated) and answered with itself and ``Vary: Origin``, also
    when only one origin is listed: a cache must not hand one origin's answer to another."""
    allowed: list[str] = app.config.get("HOPPER_CORS_ORIGINS") or []
    if not allowed:
        return
    wildcard = "*" in allowed
    origins: Any = "*" if wildcard else [
        re.compile(re.escape(origin) + r"/?\Z", re.IGNORECASE) for origin in allowed]
    CORS(app, origins=origins, send_wildcard=wildcard, always_send=False,
         methods=CORS_METHODS, allow_headers=CORS_REQUEST_HEADERS,
         expose_headers=CORS_EXPOSED_HEADERS, max_age=600, vary_header=True)


def actor() -> str | None:
    """Who is asking, from the X-Actor header. One longer than the library keeps an actor
    is refused (422 naming the header), as the body's ``actor`` is: never cut short."""
    given = request.headers.get("X-Actor", "").strip()
    if len(given) > MAX_TEXT_LENGTH:
        raise ValidationError(
            f"the X-Actor header is {len(given)} characters long; at most {MAX_TEXT_LENGTH}",
            errors={"X-Actor": [f"at most {MAX_TEXT_LENGTH} characters"]})
    return given or None
