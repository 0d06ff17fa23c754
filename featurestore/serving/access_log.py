"""The server's log lines: one access line per request, as text or JSON lines.

`AccessLog` wraps the ASGI application and, when the `featurestore.access` logger is
enabled for INFO, logs each request with its method, path, status, duration and client.
It replaces uvicorn's own access log, which has no duration. `logging_config` is the
`logging.config.dictConfig` that `featurestore serve` hands to uvicorn (and uvicorn to
every worker process): with ``log_format="json"`` every line the server logs, uvicorn's
included, is one JSON object, which log collectors read without parsing rules::

    {"time": "2024-05-01T12:00:00.123Z", "logger": "featurestore.access",
     "method": "POST", "path": "/online-features", "status": 200,
     "duration_ms": 0.81, "client": "10.0.0.7:51234"}
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "featurestore.access"
"""The logger of access lines; INFO enables them."""

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")


class AccessLog:
    """ASGI middleware logging one line per HTTP request once its answer is sent.

    The check whether the logger is enabled is made per request (a cached lookup), so
    an application built before logging is configured still follows the configuration.

    Args:
        app: the application to wrap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, timing it when it is an HTTP request."""
        if scope["type"] != "http" or not self._logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the application fails before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            milliseconds = round((time.perf_counter() - started) * 1000, 3)
            client = scope.get("client")
            address = f"{client[0]}:{client[1]}" if client else "-"
            access = {"method": scope["method"], "path": scope["path"], "status": status,
                      "duration_ms": milliseconds, "client": address}
            self._logger.info('%s - "%s %s" %d %.2fms', address, scope["method"],
                              scope["path"], status, milliseconds, extra={"access": access})


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: access fields for access lines, else the
    level, logger and message (and the traceback of a logged exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            entry.update(access)
        else:
            entry["level"] = record.levelname
            entry["message"] = record.getMessage()
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def logging_config(log_format: LogFormat = "text", access_log: bool = False) -> dict[str, Any]:
    """The logging configuration of a server process (uvicorn's `log_config`).

    Args:
        log_format: "text" (uvicorn's usual lines) or "json" (one JSON object a line).
        access_log: log one line per request (on stdout; everything else on stderr).
    """
    if log_format == "json":
        formatter: dict[str, Any] = {"()": f"{__name__}.JsonFormatter"}
    else:
        formatter = {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                     "use_colors": None}
    quiet = {"level": "WARNING", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"server": formatter},
        "handlers": {
            "stderr": {"formatter": "server", "class": "logging.StreamHandler",
                       "stream": "ext://sys.stderr"},
            "stdout": {"formatter": "server", "class": "logging.StreamHandler",
                       "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            # Replaced by featurestore.access, which also gives the duration.
            "uvicorn.access": {"handlers": ["stdout"], **quiet},
            "featurestore": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            ACCESS_LOGGER: {"handlers": ["stdout"], "propagate": False,
                            "level": "INFO" if access_log else "WARNING"},
        },
    }
