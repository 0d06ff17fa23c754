"""Sample spines for the demo and the benchmarks: rows to build a training set for.

A spine row is a user at a moment, like a transaction being scored: users are drawn
from the events (active users are scored more often), times uniformly over the events'
time span, at whole seconds. Each row carries `amount_now` (the amount being scored,
the request field of the demo's `txn_context` view) and a `label`.
"""

from __future__ import annotations

import os

import duckdb
import numpy as np
import pyarrow as pa

from featurestore.errors import InputError
from featurestore.offline.sources import fetch_table, quote_identifier, quote_literal

SECOND_US = 1_000_000
LABEL_RATE = 0.02


def sample_spine(
    events_path: str | os.PathLike[str],
    rows: int,
    *,
    seed: int = 0,
    key: str = "user_id",
    timestamp: str = "event_ts",
) -> pa.Table:
    """A spine of `rows` rows drawn from a Parquet file of events, in random order.

    Args:
        events_path: the events (for example from `sample_data.generate_transactions`).
        rows: how many spine rows.
        seed: the same seed and events give the same spine.
        key: the entity key column of the events.
        timestamp: the events' time column; the spine's time column has the same name.

    Returns:
        Columns `key` (drawn from the events' keys, weighted by activity), `timestamp`
        (tz-aware UTC, whole seconds), `amount_now` (float64) and `label` (int64 0/1).

    Raises:
        InputError: the file holds no events, or `rows` is negative.
    """
    if rows < 0:
        raise InputError(f"rows must be at least 0, got {rows}")
    path = quote_literal(os.fspath(events_path))
    column, time_column = quote_identifier(key), quote_identifier(timestamp)
    with duckdb.connect() as con:
        [(first, last, count)] = con.sql(
            f"SELECT epoch_us(min({time_column})), epoch_us(max({time_column})), count(*) "
            f"FROM read_parquet({path})"
        ).fetchall()
        if not count:
            raise InputError(f"no events in {events_path} to draw a spine from")
        # Event rows drawn with replacement: each user with its share of the events.
        rng = np.random.default_rng(seed)
        con.register("picked", pa.table({"row": np.sort(rng.integers(0, count, rows))}))
        keys = fetch_table(
            con, f"SELECT e.{column} AS key FROM read_parquet({path}, file_row_number = true) e "
            "JOIN picked ON e.file_row_number = picked.row ORDER BY picked.row",
        ).column("key")
    order = rng.permutation(rows)
    seconds = rng.integers(first // SECOND_US, last // SECOND_US + 1, rows)
    return pa.table(
        {
            key: keys.take(pa.array(order)),
            timestamp: pa.array(seconds * SECOND_US, pa.timestamp("us", tz="UTC")),
            "amount_now": np.round(rng.lognormal(np.log(40.0), 1.0, rows), 2),
            "label": (rng.random(rows) < LABEL_RATE).astype(np.int64),
        }
    )
