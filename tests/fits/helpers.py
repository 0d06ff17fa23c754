"""Spines and comparisons shared by the fitted-transform tests."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from featurestore import FeatureStore
from featurestore.sample_spine import sample_spine

SERVICE = "fraud_v1"
TRANSFORMED = ["amount_sum_7d_z", "amount_sum_7d_b", "category_idx", "amount_z_filled"]


def training_spine(store: FeatureStore, rows: int = 300, seed: int = 1) -> pa.Table:
    """A spine drawn from the demo project's events."""
    return sample_spine(store.registry_path.parent / "data" / "transactions.parquet", rows,
                        seed=seed)


def lookup_spine(users: list[int], amounts: list[float | None], at: datetime) -> pd.DataFrame:
    """A spine asking what an online lookup at `at` asks."""
    return pd.DataFrame({"user_id": users, "event_ts": [pd.Timestamp(at)] * len(users),
                         "amount_now": amounts})


def as_numbers(values: list) -> np.ndarray:
    """A column as float64, NaN for null."""
    return np.array([np.nan if v is None else float(v) for v in values], np.float64)


def assert_same_columns(online: dict[str, list], offline: dict[str, list],
                        columns: list[str]) -> None:
    """The columns are equal bit for bit (numbers as float64, nulls as NaN)."""
    for name in columns:
        got, want = online[name], offline[name]
        if any(isinstance(v, str) for v in [*got, *want]):
            assert got == want, name
            continue
        np.testing.assert_array_equal(as_numbers(got), as_numbers(want), err_msg=name)
        assert [type(v) for v in got if v is not None] == [
            type(v) for v in want if v is not None], name
