"""How the HTTP server answers errors: ``{"error": {"code": ..., "message": ...}}``.

Every failure a client can cause gets a 4xx naming the problem; an online store that is
unreachable, empty or loaded by other definitions gets a 503 (the server keeps running
and answers again once the store is back); only a bug in the server itself gets a 500,
and that answer is the same JSON shape without a stack trace (the trace goes to the log).

    400  every `RequestError` code but the four below (see `serving.errors`)
    408  body_timeout (the body did not arrive within `serving.body_timeout`)
    404  unknown_fit (a transformed lookup names a fit the service does not have)
    409  not_fitted, fit_mismatch (a transformed lookup of a service with no fit, or
         with a fit made for other definitions: the message names `featurestore fit`)
    422  expectation_failed (a pushed row breaks a source expectation; the error also
         names its row, column, rule and value)
    413  body_too_large, too_many_entities, too_many_rows
    404  not_found (unknown path)       405  method_not_allowed
    503  online_store_unavailable, not_materialized, registry_mismatch, storage_unavailable
    500  internal_error (a bug)
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

import orjson
from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from featurestore.errors import FeatureStoreError, InputError, OnlineStoreUnavailable
from featurestore.registry.suggestions import did_you_mean
from featurestore.serving.errors import NotMaterializedError, RegistryMismatchError, RequestError

LOGGER = logging.getLogger("featurestore.server")

# Status of each RequestError code that is not a plain 400.
_STATUS_BY_CODE = {
    "too_many_entities": 413,
    "too_many_rows": 413,
    "body_too_large": 413,
    "body_timeout": 408,
    "not_fitted": 409,
    "fit_mismatch": 409,
    "unknown_fit": 404,
    "expectation_failed": 422,
}
# Answered before the body was read whole: the connection is closed rather than kept,
# so the server neither reads nor waits for the rest.
_BODY_LEFT_UNREAD = frozenset({"body_too_large", "body_timeout"})
_ROUTING_CODES = {404: "not_found", 405: "method_not_allowed"}

Endpoint = Callable[[Request], Awaitable[Response]]


class BodyError(RequestError):
    """The HTTP body itself is unusable (too large, not JSON, not an object)."""


def error_response(status: int, code: str, message: str,
                   details: dict[str, object] | None = None) -> Response:
    """The JSON error answer (`details`: more members of the error, such as the row)."""
    body = orjson.dumps({"error": {"code": code, "message": message, **(details or {})}})
    return Response(body, status_code=status, media_type="application/json")


def answer_error(error: Exception) -> Response:
    """The answer for an exception raised while serving a request.

    Args:
        error: any exception; feature-store errors map to 4xx and 503, anything else
            is logged with its trace and answered with a JSON 500.
    """
    if isinstance(error, RequestError):
        response = error_response(_STATUS_BY_CODE.get(error.code, 400), error.code, str(error),
                                  getattr(error, "details", None))
        if error.code in _BODY_LEFT_UNREAD:
            response.headers["connection"] = "close"
        return response
    if isinstance(error, InputError):
        return error_response(400, "invalid_input", str(error))
    if isinstance(error, OnlineStoreUnavailable):
        return error_response(503, "online_store_unavailable", str(error))
    if isinstance(error, NotMaterializedError | RegistryMismatchError):
        return error_response(503, error.code, str(error))
    if isinstance(error, OSError):
        # A file the server writes (a pushed segment): a full or failing disk, not a bug.
        LOGGER.error("storage failed: %s", error)
        return error_response(503, "storage_unavailable",
                              f"cannot write to the offline store: {error.strerror or error}")
    if isinstance(error, FeatureStoreError):
        LOGGER.error("request failed: %s", error)
        return error_response(500, "feature_store_error", str(error))
    if isinstance(error, ClientDisconnect):
        return error_response(400, "client_disconnected", "the client closed the connection")
    LOGGER.exception("unexpected error while serving a request")
    return error_response(500, "internal_error", "internal error; the server log has details")


def json_errors(endpoint: Endpoint) -> Endpoint:
    """Wrap an endpoint so that every exception becomes a JSON error answer.

    Done per endpoint rather than with an app-wide handler for `Exception`: Starlette
    re-raises such exceptions after answering, which would print a trace per request.
    """

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as error:
            return answer_error(error)

    return guarded


def install_handlers(app: FastAPI) -> None:
    """Answer routing errors (unknown path, wrong method) in the same JSON shape."""

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, error: StarletteHTTPException) -> Response:
        code = _ROUTING_CODES.get(error.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {error.detail}"
        response = error_response(error.status_code, code, message)
        if error.headers:
            response.headers.update(error.headers)
        return response


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused past `limit` bytes or `timeout` seconds.

    The announced length (Content-Length) is checked before anything is read; a body
    without one (chunked) is refused as soon as the chunks read so far pass `limit`, so
    at most `limit` bytes and one chunk are ever held. The deadline bounds how long a
    client that sends slowly can hold the request (and its share of the server).

    Raises:
        BodyError: the body (or its announced length) exceeds `limit` (code
            ``body_too_large``) or has not arrived whole within `timeout` seconds of
            this call (code ``body_timeout``).
    """
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise BodyError("body_too_large",
                        f"request body of {announced} bytes; the limit is {limit}")
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyError("body_too_large", f"request body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError("body_timeout", f"the request body did not arrive within {timeout:g} s "
                                        f"({size} bytes received)") from None
    return b"".join(chunks)


def parse_object(body: bytes, allowed: dict[str, tuple[type, ...]]) -> dict[str, object]:
    """Parse a JSON object body and check its members' JSON types.

    Args:
        body: the raw body.
        allowed: member name → accepted Python types after parsing (include
            ``type(None)`` where null is allowed).

    Raises:
        BodyError: malformed JSON, not an object, an unknown member (with a suggestion)
            or a member of the wrong JSON type.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BodyError("malformed_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise BodyError("invalid_body", f"the body must be a JSON object, got {_json_kind(parsed)}")
    for name, value in parsed.items():
        if name not in allowed:
            raise BodyError(
                "unknown_field",
                f"unknown member '{name}'{did_you_mean(name, allowed)}; expected: "
                f"{', '.join(allowed)}",
            )
        # bool is a subclass of int in Python; JSON true is not a number.
        types = allowed[name]
        if not (bool in types if isinstance(value, bool) else isinstance(value, types)):
            raise BodyError(
                "invalid_body",
                f"member '{name}' must be {_expected(types)}, got {_json_kind(value)}",
            )
    return parsed


_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "true or false",
          int: "a number", float: "a number", type(None): "null"}


def _json_kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _expected(types: tuple[type, ...]) -> str:
    return " or ".join(dict.fromkeys(_KINDS[kind] for kind in types))
