"""The sample transaction generator: deterministic, well shaped, realistic enough."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from featurestore.sample_data import CATEGORIES, SCHEMA, generate_transactions

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    path = tmp_path_factory.mktemp("sample") / "events.parquet"
    summary = generate_transactions(path, events=60_000, users=500, days=28, seed=7)
    assert summary.path == path
    assert (summary.events, summary.users) == (60_000, 500)
    assert (summary.start, summary.end) == (START, START + timedelta(days=28))
    return pq.read_table(path)


def test_schema_and_size(sample: pa.Table) -> None:
    assert sample.schema == SCHEMA
    assert sample.num_rows == 60_000


def test_values_are_in_range_and_time_ordered(sample: pa.Table) -> None:
    users = sample["user_id"].to_numpy()
    assert users.min() >= 1 and users.max() <= 500
    micros = sample["event_ts"].cast(pa.int64()).to_numpy()
    start_us = int(START.timestamp()) * 1_000_000
    assert micros.min() >= start_us
    assert micros.max() < start_us + 28 * 86_400 * 1_000_000
    assert np.all(np.diff(micros) >= 0)
    amounts = sample["amount"].drop_null().to_numpy()
    assert amounts.min() > 0
    # Lognormal: a long right tail, median well below the mean.
    assert np.median(amounts) < amounts.mean()
    assert set(sample["merchant_category"].drop_null().unique().to_pylist()) == {
        name for name, _, _ in CATEGORIES
    }


def test_a_few_values_are_missing(sample: pa.Table) -> None:
    amount_nulls = sample["amount"].null_count / sample.num_rows
    category_nulls = sample["merchant_category"].null_count / sample.num_rows
    assert 0.002 < amount_nulls < 0.01
    assert 0.005 < category_nulls < 0.02
    assert sample["user_id"].null_count == 0 and sample["event_ts"].null_count == 0


def test_daily_and_weekly_rhythm(sample: pa.Table) -> None:
    hours = pc.hour(sample["event_ts"]).to_numpy()
    night = np.isin(hours, [2, 3, 4]).sum()
    evening = np.isin(hours, [18, 19, 20]).sum()
    assert evening > 5 * night
    weekday = pc.day_of_week(sample["event_ts"]).to_numpy()  # Monday = 0
    per_day = np.bincount(weekday, minlength=7)
    assert per_day[5] > 1.2 * per_day[0]  # Saturday busier than Monday


def test_activity_is_skewed_across_users(sample: pa.Table) -> None:
    counts = np.sort(np.bincount(sample["user_id"].to_numpy()))[::-1]
    top_share = counts[:5].sum() / counts.sum()  # the most active 1% of 500 users
    assert 0.02 < top_share < 0.15
    assert counts[0] > 4 * np.median(counts[counts > 0])


def test_same_seed_same_data_whatever_the_row_groups(tmp_path: Path) -> None:
    small = generate_transactions(
        tmp_path / "a.parquet", events=5_000, users=50, days=7, seed=3, row_group_size=700
    )
    large = generate_transactions(tmp_path / "b.parquet", events=5_000, users=50, days=7, seed=3)
    other = generate_transactions(tmp_path / "c.parquet", events=5_000, users=50, days=7, seed=4)
    assert pq.ParquetFile(small.path).metadata.num_row_groups > 5
    assert pq.ParquetFile(large.path).metadata.num_row_groups == 1
    assert pq.read_table(small.path).equals(pq.read_table(large.path))
    assert not pq.read_table(small.path).equals(pq.read_table(other.path))


def test_row_groups_are_bounded(tmp_path: Path) -> None:
    path = generate_transactions(
        tmp_path / "events.parquet", events=20_000, users=100, days=10, row_group_size=2_000
    ).path
    metadata = pq.ParquetFile(path).metadata
    sizes = [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)]
    assert sum(sizes) == 20_000
    # Chunks are whole hours: at least the target, and not much more (one hour at most).
    assert all(size < 2_000 + 400 for size in sizes)
    assert all(size >= 2_000 for size in sizes[:-1])


def test_progress_and_no_partial_file(tmp_path: Path) -> None:
    seen: list[int] = []
    generate_transactions(
        tmp_path / "events.parquet",
        events=3_000,
        users=10,
        days=2,
        row_group_size=1_000,
        progress=seen.append,
    )
    assert sum(seen) == 3_000 and len(seen) >= 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["events.parquet"]


def test_sizes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        generate_transactions(tmp_path / "x.parquet", events=0)
