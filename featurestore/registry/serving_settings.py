"""The `serving:` section of registry.yaml: who may call the HTTP API, and its limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

MAX_BODY_BYTES = 1024 * 1024
"""Default largest request body (1 MiB); larger ones get a 413 before they are read."""

MAX_PUSH_ROWS = 5_000
"""Default most rows one HTTP push may carry (the SDK's and CLI's `push` take any)."""

BODY_TIMEOUT_S = 10.0
"""Default longest time, in seconds, for receiving a whole request body; longer gets a 408."""


class Serving(BaseModel):
    """How `featurestore serve` answers HTTP (immutable; unknown keys are errors).

    Attributes:
        auth: require a bearer token (`featurestore token create`) on every endpoint but
            `/health` and the docs; `serve --auth` turns it on too.
        rate_limit: most requests per second per token (per client address when auth is
            off), per server process; None: no cap. Past it: 429 with `Retry-After`.
        max_body_bytes: largest request body, in bytes; larger gets a 413.
        max_push_rows: most rows in one `POST /push`; more gets a 413.
        body_timeout: longest time, in seconds, from a request's headers to the end of its
            body; a client sending more slowly gets a 408 (and its connection closed).
        log_sample_rate: share of lookup requests whose served values the server logs
            for `featurestore replay` (`serving/served_log.py`), from 0 (off) to 1 (all);
            `serve --log-sample-rate` overrides it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth: bool = False
    rate_limit: PositiveInt | None = None
    max_body_bytes: PositiveInt = MAX_BODY_BYTES
    max_push_rows: PositiveInt = MAX_PUSH_ROWS
    body_timeout: PositiveFloat = BODY_TIMEOUT_S
    log_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
