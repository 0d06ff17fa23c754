"""Small projects with expectations, written to disk for the validation tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = dt.datetime(2024, 1, 1)
END = "2024-01-10T00:00:00Z"
LATER_END = "2024-01-11T00:00:00Z"

Row = tuple[int, dt.datetime, float | None, str | None, str | None]
"""user_id, event_ts, amount, merchant_category, code."""

GOOD_ROWS: list[Row] = [
    (1, T0 + dt.timedelta(hours=1), 10.0, "grocery", "A-1"),
    (1, T0 + dt.timedelta(hours=5), 25.5, "travel", "A-2"),
    (2, T0 + dt.timedelta(hours=2), 3.0, "grocery", "B-1"),
    (2, T0 + dt.timedelta(days=1), 40.0, "electronics", "B-2"),
    (3, T0 + dt.timedelta(days=2), 7.25, "travel", "C-1"),
]

# One row that breaks each rule (and nothing else), for the rule written beside it.
BAD_ROWS: dict[str, Row] = {
    "not_null": (2, T0 + dt.timedelta(hours=3), None, "grocery", "B-3"),
    "range": (1, T0 + dt.timedelta(hours=3), 250000.0, "grocery", "A-3"),
    "values": (3, T0 + dt.timedelta(hours=4), 5.0, "toys", "C-2"),
    "regex": (3, T0 + dt.timedelta(hours=6), 6.0, "travel", "bad code"),
    # The same user, time and amount as the first good row: a duplicated event.
    "unique": (1, T0 + dt.timedelta(hours=1), 10.0, "travel", "A-9"),
}

RULES = {
    "not_null": ("amount", "{not_null: 0}"),
    "range": ("amount", "{range: [0, 100000]}"),
    "values": ("merchant_category", "{values: [grocery, travel, electronics]}"),
    "regex": ("code", "{regex: '[A-Z]-[0-9]+'}"),
    "unique": ("amount", "{unique: true}"),
}


def rule_expect(rule: str, policy: str) -> str:
    """The `expect:` lines of a source with one rule under one policy."""
    column, text = RULES[rule]
    return f"      {column}: {text[:-1]}, on_fail: {policy}}}\n"


def registry_text(expect: str = "", source_extra: str = "", feature_expect: str = "",
                  online: str = "local") -> str:
    """A registry over one transactions file, with the given expectation lines."""
    expect_block = f"    expect:\n{expect}" if expect else ""
    feature = f", expect: {feature_expect}" if feature_expect else ""
    return f"""project: checks
store:
  online: {online}
entities:
  user: {{keys: [user_id]}}
sources:
  transactions:
    path: data/transactions.parquet
    timestamp: event_ts
{expect_block}{source_extra}feature_views:
  user_txn:
    source: transactions
    entity: user
    features:
      txn_count_30d: {{agg: count, window: 30d}}
      amount_sum_30d: {{agg: sum, expr: amount, window: 30d{feature}}}
      amount_mean_30d: {{agg: mean, expr: amount, window: 30d}}
      last_category: {{agg: last, expr: merchant_category, window: 30d}}
      amount_count_30d: {{agg: count, expr: amount, window: 30d}}
"""


def write_rows(directory: Path, rows: Sequence[Row]) -> None:
    """Write the transactions file (replacing it)."""
    (directory / "data").mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(5)]
    table = pa.table({
        "user_id": pa.array(columns[0], pa.int64()),
        "event_ts": pa.array(columns[1], pa.timestamp("us")),
        "amount": pa.array(columns[2], pa.float64()),
        "merchant_category": pa.array(columns[3], pa.string()),
        "code": pa.array(columns[4], pa.string()),
    })
    pq.write_table(table, directory / "data" / "transactions.parquet")


def write_project(directory: Path, rows: Sequence[Row], expect: str = "",
                  source_extra: str = "", feature_expect: str = "",
                  online: str = "local") -> Path:
    """Write registry.yaml and the transactions file; return the folder."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "registry.yaml").write_text(
        registry_text(expect, source_extra, feature_expect, online))
    write_rows(directory, rows)
    return directory
