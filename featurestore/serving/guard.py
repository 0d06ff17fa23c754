"""Who may call the server, and how often: bearer tokens and a rate limit per process.

`Guard` is ASGI middleware around the application (inside `AccessLog`, so refused
requests are logged too, by path). With auth on, a request needs
``Authorization: Bearer <token>`` (RFC 6750) of a token with the endpoint's scope:

    GET /health, /docs, /docs-assets/..., /openapi.json   open
    POST /push                                              scope `push`
    GET /metrics                                            scope `metrics`
    anything else (lookups, /registry, unknown paths)       scope `read`

No token, a malformed header, or an unknown or revoked token get 401 with
``WWW-Authenticate: Bearer`` (plus ``error="invalid_token"`` when a token was given); a
token without the scope gets 403. The presented token is never logged or echoed. The
accepted token's name is put in the ASGI scope's state, where a route reads it as
``request.state.token_name`` (None when auth is off or the path is open).

With a rate limit of N, each token (each client address when auth is off) may make N
requests per second in each server process: a token bucket of capacity N refilled at N
per second. Past it: 429 with ``Retry-After``. /health and /metrics are never limited,
so probes and scrapes keep working under load.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Hashable

from starlette.types import ASGIApp, Receive, Scope, Send

from featurestore.context import AUTH_ENV
from featurestore.serving.accepted_tokens import AcceptedTokens
from featurestore.serving.http_errors import error_response

HEALTH_PATH = "/health"
OPEN_PATHS = frozenset({HEALTH_PATH, "/docs", "/openapi.json"})
OPEN_PREFIX = "/docs-assets/"
PUSH_PATH = "/push"
METRICS_PATH = "/metrics"
UNLIMITED_PATHS = frozenset({HEALTH_PATH, METRICS_PATH})
_TRUE = frozenset({"1", "true", "yes", "on"})
_MAX_RATE_KEYS = 10_000


def auth_from_environment() -> bool:
    """Whether FEATURESTORE_AUTH asks for auth (1, true, yes or on)."""
    return os.environ.get(AUTH_ENV, "").strip().lower() in _TRUE


class RateLimiter:
    """Token buckets per key: capacity `per_second`, refilled at `per_second` per second.

    Args:
        per_second: requests allowed per second and key (and in one burst).
        clock: monotonic seconds (a parameter so that tests can move time).
    """

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        self._buckets: dict[Hashable, list[float]] = {}  # key → [level, time of last look]

    def take(self, key: Hashable) -> int | None:
        """Take one request from `key`'s bucket: None when allowed, else the whole seconds
        (at least 1) to wait before the next request is."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_RATE_KEYS:
                self._forget_full(now)
            bucket = self._buckets[key] = [float(self.per_second), now]
        level = min(float(self.per_second), bucket[0] + (now - bucket[1]) * self.per_second)
        bucket[1] = now
        if level >= 1.0:
            bucket[0] = level - 1.0
            return None
        bucket[0] = level
        return max(1, math.ceil((1.0 - level) / self.per_second))

    def _forget_full(self, now: float) -> None:
        # A bucket untouched for a second is full again: the same as no bucket, so the
        # table of client addresses cannot grow without bound.
        self._buckets = {key: bucket for key, bucket in self._buckets.items()
                         if now - bucket[1] < 1.0}


class Guard:
    """ASGI middleware: bearer tokens (when `tokens` is given) and a rate limit.

    Args:
        app: the application to protect.
        tokens: the accepted tokens; None: auth is off.
        rate_limit: requests per second per token (per client address when auth is
            off), in this process; None: no limit.
    """

    def __init__(self, app: ASGIApp, tokens: AcceptedTokens | None,
                 rate_limit: int | None) -> None:
        self.app = app
        self._tokens = tokens
        self._limiter = RateLimiter(rate_limit) if rate_limit is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let a request through, or answer 401, 403 or 429 instead of the application."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["token_name"] = None
        path = scope["path"]
        who: tuple[str, str] | None = None
        if self._tokens is not None and path not in OPEN_PATHS and not path.startswith(
                OPEN_PREFIX):
            needed = ("push" if path == PUSH_PATH and scope["method"] == "POST"
                      else "metrics" if path == METRICS_PATH else "read")
            name, refusal = self._authenticate(scope, needed)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            state["token_name"] = name
            who = ("token", name)
        if self._limiter is not None and path not in UNLIMITED_PATHS:
            if who is None:
                client = scope.get("client")
                who = ("client", client[0] if client else "-")
            wait = self._limiter.take(who)
            if wait is not None:
                await _rate_limited(self._limiter.per_second, who, wait)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope, needed: str) -> tuple[str, None] | tuple[None, ASGIApp]:
        """The accepted token's name, or the refusal to answer with."""
        assert self._tokens is not None  # only called with auth on
        presented = _bearer_token(scope)
        if presented is None:
            return None, _unauthorized(
                "this server needs a token: send 'Authorization: Bearer <token>' (tokens "
                "come from `featurestore token create`)", given=False)
        token = self._tokens.find(presented)
        if token is None:
            return None, _unauthorized("the token is not valid: unknown or revoked", given=True)
        self._tokens.note_use(token)
        if needed not in token.scopes:
            return None, error_response(
                403, "forbidden", f"token '{token.name}' does not have the '{needed}' scope")
        return token.name, None


def _bearer_token(scope: Scope) -> str | None:
    """The token of the first Authorization header when it is `Bearer <token>`."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            credentials = credentials.strip()
            if scheme.lower() != "bearer" or not credentials:
                return None
            return credentials
    return None


def _unauthorized(message: str, given: bool) -> ASGIApp:
    response = error_response(401, "unauthorized", message)
    response.headers["www-authenticate"] = 'Bearer error="invalid_token"' if given else "Bearer"
    return response


def _rate_limited(per_second: int, who: tuple[str, str], wait: int) -> ASGIApp:
    kind, name = who
    whose = f"token '{name}'" if kind == "token" else f"client {name}"
    response = error_response(
        429, "rate_limited", f"more than {per_second} requests per second from {whose} "
        f"in this server process; retry after {wait} s")
    response.headers["retry-after"] = str(wait)
    return response
