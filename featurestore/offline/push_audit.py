"""Who pushed what: the audit record that every pushed segment carries.

Each push that stores rows writes one segment (`segments.py`); its Parquet footer holds,
under the key ``featurestore.push``, one JSON object::

    {"time": "2024-05-01T12:00:00.123456+00:00", "source": "transactions", "rows": 12,
     "via": "http", "token": "ingest", "client": "10.0.0.7:51234"}

`time` is when the push was accepted (UTC); `via` how it came: ``http`` (POST /push),
``sdk`` (`FeatureStore.push`) or ``cli`` (`featurestore push`); `token` the bearer
token's name (null without auth, and for SDK and CLI pushes); `client` the HTTP
client's address (null otherwise). The record is written in the same atomic write as
the events, so it exists exactly when the push was stored, and the push path still never
opens the DuckDB file (docs/decisions.md). This module alone writes and reads it.

Segments written before audit records existed read with ``via="unknown"``, the time in
their name, and no token or client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from featurestore.errors import InputError
from featurestore.offline.segments import (
    PUSHED_FOLDER,
    list_segments,
    segment_dir,
    segment_time_ns,
)
from featurestore.times import datetime_micros, to_micros

AUDIT_KEY = "featurestore.push"
"""The footer key of a segment's audit record."""

VIAS = ("http", "sdk", "cli")
"""How a push may come."""

UNKNOWN = "unknown"
"""The `via` of a segment written before audit records existed."""

NAME_SLACK_US = 60_000_000
"""How far a segment's name time may trail its accepted time (a wall clock stepped back
between the two) and still be read by a `since` query."""


@dataclass(frozen=True)
class PushOrigin:
    """Where a push comes from, as its audit record keeps it.

    Attributes:
        via: "http", "sdk" or "cli".
        token: the name of the bearer token that authorized an HTTP push (None without
            auth, and for SDK and CLI pushes).
        client: the HTTP client's address, "host:port" (None for SDK and CLI pushes).

    Raises:
        InputError: `via` is none of the three.
    """

    via: str = "sdk"
    token: str | None = None
    client: str | None = None

    def __post_init__(self) -> None:
        if self.via not in VIAS:
            raise InputError(f"via: expected one of {', '.join(VIAS)}, got {self.via!r}")


@dataclass(frozen=True)
class PushRecord:
    """One stored push, read from its segment.

    Attributes:
        time: when the push was accepted, UTC.
        source: the source pushed to.
        rows: how many rows it stored.
        via: "http", "sdk", "cli", or "unknown" for a segment older than audit records.
        token: the bearer token's name (None without auth, for SDK and CLI pushes, and
            when unknown).
        client: the HTTP client's address (None for SDK and CLI pushes, and when unknown).
        segment: the segment file holding the rows.
    """

    time: datetime
    source: str
    rows: int
    via: str
    token: str | None
    client: str | None
    segment: Path

    def as_json(self) -> dict[str, Any]:
        """The record as JSON-ready values (the time as ISO-8601 text, UTC)."""
        return {"time": self.time.isoformat(), "source": self.source, "rows": self.rows,
                "via": self.via, "token": self.token, "client": self.client,
                "segment": self.segment.name}


def audit_metadata(origin: PushOrigin, source: str, rows: int) -> dict[str, str]:
    """The footer entry recording a push accepted now (for `segments.append_segment`)."""
    record = {"time": datetime.now(UTC).isoformat(), "source": source, "rows": rows,
              "via": origin.via, "token": origin.token, "client": origin.client}
    return {AUDIT_KEY: orjson.dumps(record).decode()}


def read_push_audit(offline_dir: Path | str, source: str | None = None,
                    since: object = None) -> list[PushRecord]:
    """Every stored push, oldest first, from the segments' footers (with `since`, only
    the footers of segments named after it, less a minute, are read).

    Args:
        offline_dir: the folder of the offline DuckDB file.
        source: only pushes to this source.
        since: only pushes accepted at or after this time (ISO-8601 text or a datetime;
            naive means UTC).

    Raises:
        InputError: `since` is not a time, or `source` cannot be a source's name.
    """
    since_micros = None if since is None else to_micros(since, "since")
    segments = [(segment, folder.name) for folder in _source_folders(offline_dir, source)
                for segment in list_segments(folder)]
    if since_micros is not None:
        # A segment is named after it is accepted, so one named well before `since` was
        # accepted before it too: its footer need not be read (thousands of pushes).
        oldest_ns = (since_micros - NAME_SLACK_US) * 1000
        segments = [(segment, source) for segment, source in segments
                    if segment_time_ns(segment) >= oldest_ns]
    records = [_record(segment, source) for segment, source in segments]
    if since_micros is not None:
        records = [record for record in records
                   if datetime_micros(record.time) >= since_micros]
    return sorted(records, key=lambda record: (record.time, record.segment.name))


def newest_segment_time(offline_dir: Path | str) -> datetime | None:
    """When the newest pushed segment of any source was written (from the names alone:
    no footer is read), or None when nothing was pushed."""
    newest = max((segment_time_ns(segment) for folder in _source_folders(offline_dir, None)
                  for segment in list_segments(folder)), default=None)
    return None if newest is None else datetime.fromtimestamp(newest / 1e9, UTC)


def _source_folders(offline_dir: Path | str, source: str | None) -> list[Path]:
    """The segment folder of `source`, or of every source that has one."""
    if source is not None:
        try:
            return [segment_dir(offline_dir, source)]
        except ValueError as error:
            raise InputError(str(error)) from None
    pushed = Path(offline_dir) / PUSHED_FOLDER
    return sorted(path for path in pushed.iterdir() if path.is_dir()) if pushed.is_dir() else []


def _record(segment: Path, source: str) -> PushRecord:
    footer = pq.read_metadata(segment)
    stored = (footer.metadata or {}).get(AUDIT_KEY.encode())
    if stored is None:
        written = datetime.fromtimestamp(segment_time_ns(segment) / 1e9, UTC)
        return PushRecord(written, source, footer.num_rows, UNKNOWN, None, None, segment)
    record = orjson.loads(stored)
    return PushRecord(datetime.fromisoformat(record["time"]), record["source"],
                      record["rows"], record["via"], record["token"], record["client"],
                      segment)
