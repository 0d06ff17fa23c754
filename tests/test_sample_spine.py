"""Sample spines: drawn from the events' users and time span, deterministic per seed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from featurestore.errors import InputError
from featurestore.sample_data import SCHEMA, generate_transactions
from featurestore.sample_spine import sample_spine


def test_spine_rows_come_from_the_events(tmp_path: Path) -> None:
    data = generate_transactions(tmp_path / "events.parquet", events=3_000, users=40, days=5)
    spine = sample_spine(data.path, 500, seed=3)
    assert spine.column_names == ["user_id", "event_ts", "amount_now", "label"]
    assert spine.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    events = pq.read_table(data.path)
    assert set(spine.column("user_id").to_pylist()) <= set(events.column("user_id").to_pylist())
    times = spine.column("event_ts")
    assert pc.min(events.column("event_ts")).as_py() <= pc.min(times).as_py()
    assert pc.max(times).as_py() <= pc.max(events.column("event_ts")).as_py()
    assert all(t.microsecond == 0 for t in times.to_pylist())  # whole seconds
    assert pc.min(spine.column("amount_now")).as_py() > 0
    assert set(spine.column("label").to_pylist()) <= {0, 1}
    assert sample_spine(data.path, 500, seed=3).equals(spine)
    assert not sample_spine(data.path, 500, seed=4).equals(spine)


def test_an_empty_event_file_has_no_spine(tmp_path: Path) -> None:
    pq.write_table(SCHEMA.empty_table(), tmp_path / "events.parquet")
    with pytest.raises(InputError, match=r"no events in .* to draw a spine from"):
        sample_spine(tmp_path / "events.parquet", 10)
    with pytest.raises(InputError, match="rows must be at least 0, got -1"):
        sample_spine(tmp_path / "events.parquet", -1)
