"""Deterministic sample transaction events, written to Parquet.

The events look like a card-transaction log: a few users are far more active than
most, traffic follows the hour of the day and the day of the week, amounts are
lognormal and depend on the merchant category and on the user, and a few values are
missing. The same arguments always give the same file, whatever the chunk size:
every hour of the timeline draws from its own seeded generator.

Memory stays bounded: hours are generated and written a row group at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HOUR_US = 3_600_000_000
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)

# Merchant categories with their share of transactions and median amount.
CATEGORIES: tuple[tuple[str, float, float], ...] = (
    ("grocery", 0.22, 38.0),
    ("restaurants", 0.16, 27.0),
    ("fuel", 0.11, 45.0),
    ("online_retail", 0.10, 55.0),
    ("pharmacy", 0.07, 22.0),
    ("entertainment", 0.06, 35.0),
    ("apparel", 0.06, 70.0),
    ("utilities", 0.05, 95.0),
    ("travel", 0.05, 310.0),
    ("electronics", 0.05, 180.0),
    ("home_improvement", 0.04, 120.0),
    ("gambling", 0.03, 60.0),
)

# Relative traffic by hour of day (UTC): quiet nights, lunch and evening peaks.
HOURLY_RHYTHM = np.array(
    [0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.55, 0.80, 0.95, 1.00, 1.10,
     1.35, 1.25, 1.05, 1.00, 1.05, 1.20, 1.40, 1.45, 1.30, 1.00, 0.70, 0.45]
)  # fmt: skip

# Relative traffic by day of week, Monday first: busier towards the weekend.
WEEKLY_RHYTHM = np.array([0.90, 0.92, 0.95, 1.00, 1.15, 1.25, 0.95])

AMOUNT_NULL_RATE = 0.005
CATEGORY_NULL_RATE = 0.01

SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("event_ts", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("merchant_category", pa.string()),
    ]
)


@dataclass(frozen=True)
class SampleData:
    """What was generated.

    Attributes:
        path: the Parquet file written.
        events: number of rows.
        users: user ids run from 1 to `users`.
        start: first instant of the timeline (UTC).
        end: end of the timeline, exclusive.
    """

    path: Path
    events: int
    users: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class _Users:
    """Per-user traits.

    Attributes:
        by_rank: user index (0-based) of each activity rank, rank 0 the most active;
            a random order, so that ids say nothing about activity.
        spend_offset: per-user shift of the log amount (big and small spenders).
    """

    by_rank: np.ndarray
    spend_offset: np.ndarray


def generate_transactions(
    path: str | os.PathLike[str],
    *,
    events: int = 200_000,
    users: int = 2_000,
    days: int = 90,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    row_group_size: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
) -> SampleData:
    """Write `events` transactions of `users` users over `days` days to a Parquet file.

    Args:
        path: output file; its folder is created. Written under a temporary name and
            renamed, so the file is either complete or absent.
        events: number of transactions.
        users: number of distinct users (ids 1..users; some may have no events).
        days: length of the timeline, starting at `start`.
        seed: the same seed gives the same file.
        start: first instant (UTC; a naive datetime is taken as UTC).
        row_group_size: rows per Parquet row group, and roughly per chunk in memory.
        progress: called with the number of rows written after each row group.

    Returns:
        A summary of what was written.

    Raises:
        ValueError: a size is not positive.
    """
    if min(events, users, days, row_group_size) < 1:
        raise ValueError("events, users, days and row_group_size must be positive")
    start = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    start_us = int(start.timestamp()) * 1_000_000
    counts = _events_per_hour(events, days, start, seed)
    traits = _user_traits(users, seed)
    try:
        # Dictionary encoding only pays off for the category column.
        with pq.ParquetWriter(temporary, SCHEMA, use_dictionary=["merchant_category"]) as writer:
            for table in _chunks(counts, traits, start_us, seed, row_group_size):
                writer.write_table(table, row_group_size=table.num_rows)
                if progress is not None:
                    progress(table.num_rows)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return SampleData(target, events, users, start, start + timedelta(days=days))


def _events_per_hour(events: int, days: int, start: datetime, seed: int) -> np.ndarray:
    """How many events fall in each hour of the timeline (sums to `events`)."""
    hours = np.arange(days * 24)
    start_hour = start.hour
    hour_of_day = (start_hour + hours) % 24
    day_of_week = (start.weekday() + (start_hour + hours) // 24) % 7
    intensity = HOURLY_RHYTHM[hour_of_day] * WEEKLY_RHYTHM[day_of_week]
    return np.random.default_rng([seed, 0]).multinomial(events, intensity / intensity.sum())


def _user_traits(users: int, seed: int) -> _Users:
    rng = np.random.default_rng([seed, 1])
    return _Users(by_rank=rng.permutation(users), spend_offset=rng.normal(0.0, 0.35, users))


def _draw_users(rng: np.random.Generator, count: int, traits: _Users) -> np.ndarray:
    """User indexes with skewed activity: the share of events by rank r falls off as
    r^(-1/3), so the most active 1% of users make about 5% of all events.

    A closed-form transform of uniforms, not a search over a distribution: this is the
    hot loop of a 10M-event run.
    """
    users = len(traits.by_rank)
    ranks = (rng.random(count) ** 1.5 * users).astype(np.int64)
    return traits.by_rank[np.minimum(ranks, users - 1)]


def _chunks(
    counts: np.ndarray, traits: _Users, start_us: int, seed: int, row_group_size: int
) -> Iterator[pa.Table]:
    """Tables of whole hours, each holding at least `row_group_size` rows but the last."""
    pending: list[pa.Table] = []
    pending_rows = 0
    for hour, count in enumerate(counts):
        if count == 0:
            continue
        pending.append(_hour_events(hour, int(count), traits, start_us, seed))
        pending_rows += int(count)
        if pending_rows >= row_group_size:
            yield pa.concat_tables(pending)
            pending, pending_rows = [], 0
    if pending:
        yield pa.concat_tables(pending)


_CATEGORY_NAMES = pa.array([name for name, _, _ in CATEGORIES], pa.string())
# Shares are multiples of 1/10,000, so a table of 10,000 slots gives every category
# exactly its share and drawing a category is one lookup (no search).
_CATEGORY_SLOTS = np.repeat(
    np.arange(len(CATEGORIES)), [round(share * 10_000) for _, share, _ in CATEGORIES]
)
_CATEGORY_LOG_MEDIAN = np.log([median for _, _, median in CATEGORIES])


def _hour_events(hour: int, count: int, traits: _Users, start_us: int, seed: int) -> pa.Table:
    """The events of one hour, sorted by time, drawn from the hour's own generator."""
    rng = np.random.default_rng([seed, 2, hour])
    offsets = np.sort(rng.integers(0, HOUR_US, count))
    users = _draw_users(rng, count, traits)
    categories = _CATEGORY_SLOTS[rng.integers(0, len(_CATEGORY_SLOTS), count)]
    log_amount = (
        _CATEGORY_LOG_MEDIAN[categories] + traits.spend_offset[users] + rng.normal(0, 0.7, count)
    )
    amount = np.round(np.exp(log_amount), 2)
    amount_missing = rng.random(count) < AMOUNT_NULL_RATE
    category_missing = rng.random(count) < CATEGORY_NULL_RATE
    timestamps = start_us + hour * HOUR_US + offsets
    return pa.Table.from_arrays(
        [
            pa.array(users.astype(np.int64) + 1),
            pa.array(timestamps, pa.timestamp("us", tz="UTC")),
            pa.array(amount, pa.float64(), mask=amount_missing),
            _CATEGORY_NAMES.take(pa.array(categories, mask=category_missing)),
        ],
        schema=SCHEMA,
    )
