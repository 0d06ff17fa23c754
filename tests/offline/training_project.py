"""A small project for training-set tests: a registry exercising every result type,
two entities (an integer and a string key), a request view, and events written as
Parquet from plain tuples.

Every test project uses the same registry and event schema, so the kernels compile once
per test session (compiled modules are shared by graph hash).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore import FeatureStore
from tests.reference import Event, feature_value
from tests.strategies import MINUTE

REGISTRY = """\
project: training_test
entities:
  user:
    keys: [user_id]
  merchant:
    keys: [merchant]
sources:
  events:
    path: events.parquet
    timestamp: event_ts
feature_views:
  user_stats:
    source: events
    entity: user
    features:
      n_1h:             {agg: count, window: 1h, hop: 5m}
      n_amount_1d:      {agg: count, expr: amount, window: 1d, hop: 1h}
      sum_1h:           {agg: sum, expr: amount, window: 1h, hop: 5m}
      sum_3d:           {agg: sum, expr: amount, window: 3d, hop: 1h}
      mean_90m:         {agg: mean, expr: amount, window: 90m, hop: 30m}
      std_1d:           {agg: std, expr: amount, window: 1d, hop: 1h}
      std_life:         {agg: std, expr: amount}
      min_7m:           {agg: min, expr: amount, window: 7m, hop: 1m}
      max_3d:           {agg: max, expr: amount, window: 3d, hop: 1h}
      first_cat_1d:     {agg: first, expr: category, window: 1d, hop: 1h}
      last_cat_1h:      {agg: last, expr: category, window: 1h, hop: 5m}
      last_amount_life: {agg: last, expr: amount}
      qty_sum_1d:       {agg: sum, expr: qty, window: 1d, hop: 1h}
      qty_max_1d:       {agg: max, expr: qty, window: 1d, hop: 1h}
      flag_last_1h:     {agg: last, expr: flag, window: 1h, hop: 5m}
      latest_ts_1d:     {agg: last, expr: event_ts, window: 1d, hop: 1h}
      big_1d:           {agg: sum, expr: "amount > 50", window: 1d, hop: 1h}
  merchant_stats:
    source: events
    entity: merchant
    features:
      n_1h:             {agg: count, window: 1h, hop: 5m}
      amount_mean_1d:   {agg: mean, expr: amount, window: 1d, hop: 1h}
request_views:
  ctx:
    request:
      amount_now: float64
    features:
      ratio: "amount_now / (user_stats.mean_90m + 1)"
      double_now: "amount_now * 2"
services:
  svc: [user_stats:sum_1h, ctx:ratio, merchant_stats:amount_mean_1d]
"""

EVENT_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("merchant", pa.string()),
        ("event_ts", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("qty", pa.int64()),
        ("category", pa.string()),
        ("flag", pa.bool_()),
    ]
)
MERCHANTS = ("ma", "mb", "mc")
UNSEEN_MERCHANT = "mz"

# One event: (user id, time in µs, {"amount", "qty", "category", "flag"}).
EventTuple = tuple[int, int, dict]


def at(micros: int) -> dt.datetime:
    """A naive datetime (UTC) for a time in microseconds."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=micros)


def merchant_of(ts: int) -> str:
    """The merchant of an event: a function of its time, so strategies need not draw it."""
    return MERCHANTS[(ts // (7 * MINUTE)) % len(MERCHANTS)]


def make_project(folder: Path, events: Sequence[EventTuple] = ()) -> FeatureStore:
    """Write the registry and events into `folder` and open a store on it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "registry.yaml").write_text(REGISTRY)
    write_events(folder, events)
    return FeatureStore(folder)


def write_events(folder: Path, events: Sequence[EventTuple]) -> None:
    """Replace the project's events.parquet."""
    table = pa.table(
        {
            "user_id": [user for user, _, _ in events],
            "merchant": [merchant_of(ts) for _, ts, _ in events],
            "event_ts": [at(ts) for _, ts, _ in events],
            "amount": [row["amount"] for *_, row in events],
            "qty": [row["qty"] for *_, row in events],
            "category": [row["category"] for *_, row in events],
            "flag": [row["flag"] for *_, row in events],
        },
        schema=EVENT_SCHEMA,
    )
    pq.write_table(table, folder / "events.parquet")


def row(amount: float | None = None, qty: int | None = None, category: str | None = None,
        flag: bool = False) -> dict:
    """An event's values, for hand-written cases."""
    return {"amount": amount, "qty": qty, "category": category, "flag": flag}


def spine_frame(queries: Sequence[tuple[int, int]], merchants: Sequence[str] | None = None
                ) -> pd.DataFrame:
    """A spine from (user id, µs) pairs, in the given order, with extra columns."""
    count = len(queries)
    return pd.DataFrame(
        {
            "label": np.arange(count, dtype=np.int64) % 2,
            "user_id": np.array([user for user, _ in queries], dtype=np.int64),
            "merchant": list(merchants) if merchants is not None else ["ma"] * count,
            "event_ts": pd.to_datetime([at(t) for _, t in queries]).as_unit("us"),
            "amount_now": np.linspace(1.0, 100.0, count),
        }
    )


def reference_values(store: FeatureStore, view: str, key_column: str,
                     events: Sequence[EventTuple], key: object, t: int) -> dict[str, object]:
    """DESIGN §4 values of every feature of `view` for one key at time t (the oracle)."""
    specs = store.kernels().views[view].plan.spec.features

    def key_of(user: int, ts: int) -> object:
        return user if key_column == "user_id" else merchant_of(ts)

    mine = [Event(ts, {**values, "event_ts": ts}) for user, ts, values in events
            if key_of(user, ts) == key]
    return {spec.name: feature_value(spec, mine, t) for spec in specs}


def same(got: object, expected: object) -> bool:
    """Whether a training-set cell equals the oracle's value (1e-9 relative for floats)."""
    if _is_null(got) or _is_null(expected):
        return _is_null(got) and _is_null(expected)
    if isinstance(got, pd.Timestamp):
        return got == pd.Timestamp(at(int(expected)), tz="UTC")
    if isinstance(expected, str) or isinstance(got, str):
        return got == expected
    return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-9)


def _is_null(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def shuffled(items: Iterable[tuple[int, int]], seed: int = 0) -> list[tuple[int, int]]:
    """Items in a fixed random order (spines need not be sorted)."""
    listed = list(items)
    order = np.random.default_rng(seed).permutation(len(listed))
    return [listed[i] for i in order]

