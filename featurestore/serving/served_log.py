"""The served-value log: sampled lookups, as answered, in append-only Parquet segments.

With a sample rate above 0 (`serving: {log_sample_rate: 0.1}` in the registry, or
`featurestore serve --log-sample-rate 0.1`) a server records a sample of its lookups so
that `featurestore replay` can recompute them with the offline engine later. The format
is a contract (a drift job reads it too):

- the folder is `served-log/` beside the offline DuckDB file, or FEATURESTORE_SERVED_LOG;
- files are `served-<UTC yyyymmddTHHMMSS>-<pid>-<seq>.parquet`, written under a hidden
  temporary name and renamed into place, never rewritten;
- one row per entity row of a logged lookup, with the columns of `SCHEMA`: logged_at_us
  and at_us (int64 microseconds, UTC), registry_version (string), state_version (JSON:
  view → online state version that answered), request (JSON: {"features": [...]} or
  {"service": ..., "transformed": bool, "fit": id or null}), entity (JSON: key column →
  value), values (JSON: output column → value as served, null for missing) and
  request_fields (JSON: request field → the value the lookup sent for this row, as sent;
  null when it sent none). Segments written before request_fields existed lack the
  column; `read_served_log` reads it as null there.

Logging never holds a request up. The request thread draws the sample (per lookup
request), encodes the lookup's rows as lines of JSON (`served_rows.RowEncoder`, about
4 microseconds for a single-entity lookup, 1 more with request fields) and appends
them to a bounded deque: no lock, no wait. A full deque drops the lookup and counts
it. A writer thread wakes every `POLL_SECONDS`, moves the deque's lines aside, and
writes a segment every `flush_rows` rows or `flush_seconds` seconds (and on `stop`):
Arrow's JSON reader and the Parquet writer do that work without the GIL. Encoding in
the writer thread instead was measured to delay the requests arriving while it ran
(p99 1.1x to 1.3x of logging off, `benchmarks/online.py --served-log`); now the ratio
is within the machine's noise.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.errors import InputError
from featurestore.serving.served_rows import SCHEMA, RowEncoder, ServedRows, warm_up

if TYPE_CHECKING:
    from featurestore.registry.serving_settings import Serving
    from featurestore.serving.lookup_answer import LookupAnswer

SERVED_LOG_ENV = "FEATURESTORE_SERVED_LOG"
"""Overrides the folder of the served-value log."""
LOG_SAMPLE_RATE_ENV = "FEATURESTORE_LOG_SAMPLE_RATE"
"""How `serve --workers N` hands `--log-sample-rate` to its worker processes."""
SERVED_LOG_FOLDER = "served-log"
SEGMENT_PREFIX = "served-"
SEGMENT_SUFFIX = ".parquet"
MAX_QUEUE = 10_000
"""Default most lookups waiting for the writer; more are dropped (and counted)."""
FLUSH_ROWS = 10_000
"""Default rows per segment: a segment is written when this many wait."""
FLUSH_SECONDS = 5.0
"""Default longest time a logged lookup waits before its segment is written (and how
long `replay` may miss the newest lookups of a running server): fewer, larger segments,
since each write costs a fixed fraction of a millisecond under the GIL."""
POLL_SECONDS = 1.0
"""How often the writer thread drains the queue (which holds `MAX_QUEUE` lookups)."""

LOGGED, DROPPED, FAILED = "logged", "dropped", "failed"
"""What became of a sampled lookup: in a segment (or on its way), left out because the
queue was full, or lost because it could not be encoded or its segment written."""

_log = logging.getLogger("featurestore.serving")
# Segment numbers, per process: every log of the process draws from it, so two logs
# writing in the same second never pick the same name.
_SEQUENCE = itertools.count()


def served_log_dir(offline_path: Path) -> Path:
    """The folder of the served-value log: FEATURESTORE_SERVED_LOG, else `served-log/`
    beside the offline DuckDB file."""
    override = os.environ.get(SERVED_LOG_ENV)
    if override:
        return Path(override).resolve()
    return offline_path.parent / SERVED_LOG_FOLDER


def check_sample_rate(rate: object, where: str = "log sample rate") -> float:
    """A sample rate as a float in [0, 1].

    Raises:
        InputError: anything else (the message names `where`).
    """
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise InputError(f"{where}: expected a number from 0 to 1, got {rate!r}")
    return float(rate)


def sample_rate_from_environment() -> float | None:
    """The rate `serve --workers N` passed to this worker (None: the registry's).

    Raises:
        InputError: the variable holds no number from 0 to 1.
    """
    text = os.environ.get(LOG_SAMPLE_RATE_ENV)
    if not text:
        return None
    try:
        rate: object = float(text)
    except ValueError:
        rate = text
    return check_sample_rate(rate, LOG_SAMPLE_RATE_ENV)


class ServedLog:
    """Samples lookups and writes them to segments from a background thread.

    Args:
        directory: the log's folder (created on the first write).
        sample_rate: the share of lookup requests logged, in (0, 1].
        max_queue: most lookups waiting for the writer; beyond it they are dropped.
        flush_rows: rows that make the writer write a segment at once.
        flush_seconds: longest wait of a logged lookup before it is written.
        seed: seed of the sample (None: unpredictable).

    Attributes:
        logged: lookups taken into the queue.
        dropped: sampled lookups dropped because the queue was full.
        failed: lookups lost because their segment could not be written.
        written: rows written to segments.
    """

    def __init__(self, directory: Path, sample_rate: float, max_queue: int = MAX_QUEUE,
                 flush_rows: int = FLUSH_ROWS, flush_seconds: float = FLUSH_SECONDS,
                 seed: int | None = None) -> None:
        self.directory = directory
        self.sample_rate = check_sample_rate(sample_rate)
        self.max_queue = max_queue
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.logged = 0
        self.dropped = 0
        self.failed = 0
        # Told of every outcome (logged, dropped, failed) with its count: the server's
        # /metrics counter (`metrics.ServerMetrics.served_log`).
        self.counted: Callable[[str, int], None] | None = None
        self.written = 0
        # A deque's append and popleft are atomic: the request thread needs no lock.
        self._queue: collections.deque[list[bytes]] = collections.deque()
        self._encoder = RowEncoder()
        self._random: Callable[[], float] = random.Random(seed).random
        self._write_lock = threading.Lock()
        self._rows = ServedRows()
        self._oldest = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def offer(self, request: Mapping[str, object], answer: LookupAnswer,
              registry_version: int | None) -> None:
        """Log one answered lookup if it is sampled; never blocks, never raises.

        Args:
            request: the lookup's arguments (the parsed body).
            answer: what was answered (its `features` a dict of lists).
            registry_version: the applied registry version that answered.
        """
        if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
            return
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            self._count(DROPPED)
            return
        try:
            rows = self._encoder.encode(time.time_ns() // 1000, request, answer,
                                        registry_version)
        except Exception:  # never fail a request for its log; counted, and said once
            if not self.failed:
                _log.exception("served-value log: a lookup could not be encoded")
            self.failed += 1
            self._count(FAILED)
            return
        if rows:
            self._queue.append(rows)
            self.logged += 1
            self._count(LOGGED)

    def _count(self, outcome: str, lookups: int = 1) -> None:
        if self.counted is not None:
            self.counted(outcome, lookups)

    def start(self) -> None:
        """Start the writer thread (after a first segment encoded in memory: pyarrow
        loads its cast and Parquet code on first use, a few hundred milliseconds that
        would otherwise hold the GIL in the middle of serving)."""
        if self._thread is None:
            warm_up()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="featurestore-served-log",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the writer thread and write whatever is logged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        except Exception:  # a shutdown goes on; the lookups are counted as failed
            _log.exception("served-value log: writing the last segment failed")
        if self.dropped:
            _log.warning("served-value log: %d sampled lookups dropped (queue full)",
                         self.dropped)

    def flush(self) -> Path | None:
        """Write every logged lookup now; the new segment's path (None: nothing to write)."""
        with self._write_lock:
            self._drain()
            return self._write()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                with self._write_lock:
                    self._drain()
                    due = time.monotonic() - self._oldest >= self.flush_seconds
                    if self._rows.lookups and (due or self._rows.rows >= self.flush_rows):
                        self._write()
            except Exception:  # keep logging; this batch is counted as failed
                _log.exception("served-value log: writing a segment failed")

    def _drain(self) -> None:
        """Move what waits in the queue to the next segment's rows."""
        queue = self._queue
        if not queue:
            return
        if not self._rows.lookups:
            self._oldest = time.monotonic()
        for _ in range(len(queue)):
            self._rows.add(queue.popleft())

    def _write(self) -> Path | None:
        rows, self._rows = self._rows, ServedRows()
        if not rows.lookups:
            return None
        try:
            return self._write_segment(rows.table())
        except Exception:
            self.failed += rows.lookups
            self._count(FAILED, rows.lookups)
            raise

    def _write_segment(self, table: pa.Table) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        # Readers list `served-*.parquet`: the dot and suffix hide the file until whole.
        temporary = self.directory / f".{SEGMENT_PREFIX}{os.getpid()}-{id(self)}.tmp"
        try:
            pq.write_table(table, temporary)
            while True:
                final = self.directory / (f"{SEGMENT_PREFIX}{stamp}-{os.getpid()}-"
                                          f"{next(_SEQUENCE):06d}{SEGMENT_SUFFIX}")
                try:
                    # A link never replaces: a segment of the same name (a process of
                    # the same pid before a restart) is kept, and the next number taken.
                    os.link(temporary, final)
                    break
                except FileExistsError:
                    continue
        finally:
            temporary.unlink(missing_ok=True)
        self.written += table.num_rows
        return final


def list_served_segments(directory: Path) -> list[Path]:
    """The complete segments of a served-value log, in name order (empty: none)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"))


def read_served_log(directory: Path, since_us: int | None = None) -> pa.Table:
    """Every logged row (logged at or after `since_us`), oldest segment first, with the
    columns of `SCHEMA` (a column an older segment lacks, `request_fields`, is null).

    Raises:
        InputError: a segment cannot be read as the log's format.
    """
    tables = []
    for path in list_served_segments(directory):
        try:
            table = pq.read_table(path, schema=SCHEMA)
        except (OSError, pa.ArrowInvalid) as error:
            raise InputError(f"served-value log segment {path}: {error}") from None
        if since_us is not None:
            table = table.filter(pc.greater_equal(table["logged_at_us"], since_us))
        tables.append(table)
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def served_log_for(offline_path: Path, serving: Serving,
                   sample_rate: float | None = None) -> ServedLog | None:
    """The log a server keeps: at `sample_rate`, else the registry's
    `serving.log_sample_rate` (None: logging is off, at a rate of 0).

    Raises:
        InputError: `sample_rate` is not a number from 0 to 1.
    """
    rate = serving.log_sample_rate if sample_rate is None else check_sample_rate(sample_rate)
    return ServedLog(served_log_dir(offline_path), rate) if rate > 0 else None
