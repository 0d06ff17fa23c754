"""Events streamed in hash partitions: order, entity ids, nulls, time bounds, spines."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore.errors import SourceError
from featurestore.offline.dictionaries import build_dictionaries
from featurestore.offline.event_query import plan_events, stage_partitions
from featurestore.offline.events import read_partition, read_partitions, suggest_partitions
from featurestore.offline.keys import partition_of_keys
from featurestore.offline.push_validation import validate_rows
from featurestore.offline.schema import describe_source
from featurestore.offline.segments import append_segment, segment_dir
from featurestore.offline.sources import SourceSpec
from tests.strategies import BASE, HOUR, MINUTE
from tests.strategies import events as event_lists
from transforms.spec import ColumnType

UTC = dt.UTC


def _micros(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() * 1_000_000)


def _at(micros: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=micros)


def _events_table(rows: list[tuple[object, int, dict]]) -> pa.Table:
    """Events from (key, µs, values) tuples; timestamps naive (UTC)."""
    return pa.table(
        {
            "user_id": pa.array([key for key, _, _ in rows], pa.int64()),
            "event_ts": pa.array([_at(ts) for _, ts, _ in rows], pa.timestamp("us")),
            "amount": pa.array([values["amount"] for *_, values in rows], pa.float64()),
            "qty": pa.array([values["qty"] for *_, values in rows], pa.int64()),
            "category": pa.array([values["category"] for *_, values in rows], pa.string()),
            "flag": pa.array([values["flag"] for *_, values in rows], pa.bool_()),
        }
    )


def _table_source(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str = "events"):
    con.register("incoming", table)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM incoming")
    con.unregister("incoming")
    return SourceSpec("transactions", None, name, None, "event_ts")


def _read_all(con, spec, base_dir, columns, strings, partitions, start=None, end=None):
    dictionaries = build_dictionaries(con, spec, base_dir, strings)
    parts = list(
        read_partitions(
            con, spec, base_dir, ["user_id"], columns, strings, dictionaries, start, end,
            partitions,
        )
    )  # fmt: skip
    return parts, dictionaries


def _rows_of(part, columns) -> list[tuple]:
    """Events of a partition as (key, ts, values...) with NaN shown as None."""
    keys = part.key_table.column(0).take(pa.array(part.entity)).to_pylist()
    values = [
        [None if np.isnan(v) else float(v) for v in part.columns[name]] for name in columns
    ]
    return [tuple(row) for row in zip(keys, part.ts.tolist(), *values, strict=True)]


def _sort_key(row: tuple) -> tuple:
    # None sorts last, like NaN in the partitions.
    return tuple((value is None, value) for value in row)


def test_events_sorted_with_dense_entities_and_codes(tmp_path: Path) -> None:
    con = duckdb.connect()
    rows = [
        (7, BASE + 2 * HOUR, {"amount": 5.0, "qty": 1, "category": "b", "flag": True}),
        (3, BASE + HOUR, {"amount": None, "qty": None, "category": None, "flag": False}),
        (7, BASE, {"amount": 1.5, "qty": 2, "category": "a", "flag": True}),
        (3, BASE + HOUR, {"amount": 2.0, "qty": 3, "category": "c", "flag": False}),
    ]
    spec = _table_source(con, _events_table(rows))
    columns = ["amount", "qty", "flag", "category"]
    [part], dictionaries = _read_all(con, spec, tmp_path, columns, ["category"], 1)
    assert dictionaries == {"category": ["a", "b", "c"]}
    assert part.key_table.column("user_id").to_pylist() == [3, 7]
    assert part.key_table.schema.field("user_id").type == pa.int64()
    assert part.entity.tolist() == [0, 0, 1, 1]
    assert part.ts.tolist() == [BASE + HOUR, BASE + HOUR, BASE, BASE + 2 * HOUR]
    assert all(values.dtype == np.float64 for values in part.columns.values())
    # At equal (entity, ts) the numeric values decide, NaN last.
    np.testing.assert_array_equal(part.columns["amount"], [2.0, np.nan, 1.5, 5.0])
    np.testing.assert_array_equal(part.columns["qty"], [3.0, np.nan, 2.0, 1.0])
    np.testing.assert_array_equal(part.columns["flag"], [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(part.columns["category"], [2.0, np.nan, 0.0, 1.0])


def test_string_ties_are_broken_by_code_whatever_the_stored_order(tmp_path: Path) -> None:
    con = duckdb.connect()
    same = {"amount": 1.0, "qty": 1, "flag": True}
    rows = [(1, BASE, {**same, "category": name}) for name in ["c", None, "a", "b"]]
    results = []
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        spec = _table_source(con, _events_table([rows[i] for i in order]))
        [part], _ = _read_all(con, spec, tmp_path, ["category", "amount"], ["category"], 1)
        results.append(part.columns["category"].tolist())
    assert results[0][:3] == [0.0, 1.0, 2.0] and np.isnan(results[0][3])
    assert all(np.array_equal(r, results[0], equal_nan=True) for r in results)


def test_null_keys_and_timestamps_are_skipped(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM (VALUES "
        "(1, TIMESTAMP '2024-01-01 00:00:00', 1.0), (NULL, TIMESTAMP '2024-01-01', 2.0), "
        "(2, NULL, 3.0), (2, TIMESTAMP '2024-01-02', NULL)) t(user_id, event_ts, amount)"
    )
    spec = SourceSpec("transactions", None, "events", None, "event_ts")
    [part], _ = _read_all(con, spec, tmp_path, ["amount"], [], 1)
    assert part.key_table.column("user_id").to_pylist() == [1, 2]
    np.testing.assert_array_equal(part.columns["amount"], [1.0, np.nan])


def test_time_bounds_are_half_open_in_microseconds(tmp_path: Path) -> None:
    con = duckdb.connect()
    values = {"amount": 1.0, "qty": 1, "category": "a", "flag": True}
    times = [BASE - 1, BASE, BASE + 1, BASE + HOUR - 1, BASE + HOUR]
    spec = _table_source(con, _events_table([(1, ts, values) for ts in times]))
    [part], _ = _read_all(con, spec, tmp_path, ["amount"], [], 1, BASE, BASE + HOUR)
    assert part.ts.tolist() == [BASE, BASE + 1, BASE + HOUR - 1]
    [part], _ = _read_all(con, spec, tmp_path, ["amount"], [], 1, None, BASE + 1)
    assert part.ts.tolist() == [BASE - 1, BASE]


def test_timestamptz_and_naive_sources_give_the_same_microseconds(tmp_path: Path) -> None:
    con = duckdb.connect()
    # A session time zone other than UTC must change nothing.
    con.execute("SET TimeZone = 'America/New_York'")
    con.execute(
        "CREATE TABLE naive AS SELECT 1 AS user_id, TIMESTAMP '2024-03-10 07:30:00' AS event_ts,"
        " 1.0 AS amount"
    )
    con.execute(
        "CREATE TABLE aware AS SELECT 1 AS user_id,"
        " TIMESTAMPTZ '2024-03-10 09:30:00+02:00' AS event_ts, 1.0 AS amount"
    )
    expected = _micros(dt.datetime(2024, 3, 10, 7, 30))
    for table in ("naive", "aware"):
        spec = SourceSpec("s", None, table, None, "event_ts")
        [part], _ = _read_all(con, spec, tmp_path, ["amount", "event_ts"], [], 1)
        assert part.ts.tolist() == [expected]
        assert part.columns["event_ts"].tolist() == [float(expected)]
        [bounded], _ = _read_all(con, spec, tmp_path, ["amount"], [], 1, expected, expected + 1)
        assert len(bounded) == 1


def test_partitions_cover_every_event_once_and_keep_keys_together(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT (i % 97)::INTEGER AS user_id,"
        " TIMESTAMP '2024-01-01' + to_microseconds(i * 7919 % 100000) AS event_ts,"
        " (i % 13)::DOUBLE AS amount FROM range(5000) t(i)"
    )
    spec = SourceSpec("s", None, "events", None, "event_ts")
    parts, _ = _read_all(con, spec, tmp_path, ["amount"], [], 4)
    assert [part.index for part in parts] == [0, 1, 2, 3]
    assert sum(len(part) for part in parts) == 5000
    keys = [set(part.key_table.column(0).to_pylist()) for part in parts]
    assert set().union(*keys) == set(range(97))
    assert sum(len(k) for k in keys) == 97
    for part in parts:
        order = np.lexsort((part.columns["amount"], part.ts, part.entity))
        np.testing.assert_array_equal(order, np.arange(len(part)))
        assert part.entity.tolist() == sorted(part.entity.tolist())
        assert np.unique(part.entity).tolist() == list(range(part.key_table.num_rows))


def test_output_does_not_depend_on_file_layout(tmp_path: Path) -> None:
    """Two files with the same events in different orders read identically (glob too)."""
    con = duckdb.connect()
    table = _events_table(
        [
            (i % 5, BASE + (i % 7) * MINUTE,
             {"amount": float(i % 3), "qty": i, "category": "xyz"[i % 3], "flag": i % 2 == 0})
            for i in range(200)
        ]
    )  # fmt: skip
    pq.write_table(table, tmp_path / "forward.parquet")
    pq.write_table(table.take(np.arange(199, -1, -1)), tmp_path / "backward.parquet")
    (tmp_path / "split").mkdir()
    pq.write_table(table.slice(0, 120), tmp_path / "split" / "a.parquet")
    pq.write_table(table.slice(120), tmp_path / "split" / "b.parquet")
    columns = ["amount", "qty", "category", "flag"]
    results = []
    for path in ("forward.parquet", "backward.parquet", "split/*.parquet"):
        spec = SourceSpec("s", path, None, None, "event_ts")
        parts, _ = _read_all(con, spec, tmp_path, columns, ["category"], 2)
        results.append([_rows_of(part, columns) for part in parts])
    assert results[0] == results[1] == results[2]


def test_pushed_segments_are_read_and_extend_the_dictionary(tmp_path: Path) -> None:
    con = duckdb.connect()
    base = {"amount": 1.0, "qty": 1, "flag": True}
    pq.write_table(
        _events_table([(1, BASE, {**base, "category": "b"})]), tmp_path / "events.parquet"
    )
    spec = SourceSpec(
        "transactions", "events.parquet", None, None, "event_ts",
        pushed_dir=str(segment_dir(tmp_path / "data", "transactions")),
    )  # fmt: skip
    schema = describe_source(con, spec, tmp_path)
    dictionaries = build_dictionaries(con, spec, tmp_path, ["category"])
    assert dictionaries == {"category": ["b"]}
    pushed = validate_rows(
        [{"user_id": 2, "event_ts": "2024-01-01T01:00:00+01:00", "category": "a"}],
        schema, "event_ts", ["user_id"],
    )  # fmt: skip
    append_segment(tmp_path / "data", "transactions", pushed)
    [part] = read_partitions(
        con, spec, tmp_path, ["user_id"], ["amount", "category"], ["category"],
        dictionaries, None, None, 1,
    )  # fmt: skip
    assert part.key_table.column(0).to_pylist() == [1, 2]
    assert part.ts.tolist() == [BASE, BASE]
    # 'a' was pushed after the dictionary was built: appended, earlier codes kept.
    assert dictionaries == {"category": ["b", "a"]}
    np.testing.assert_array_equal(part.columns["category"], [0.0, 1.0])
    np.testing.assert_array_equal(part.columns["amount"], [1.0, np.nan])


def test_string_and_multi_column_keys(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM (VALUES ('b', 2::SMALLINT, TIMESTAMP '2024-01-01',"
        " 1.0), ('a', 1, TIMESTAMP '2024-01-02', 2.0), ('b', 1, TIMESTAMP '2024-01-03', 3.0),"
        " ('a', 1, TIMESTAMP '2024-01-01', 4.0)) t(country, shop, event_ts, amount)"
    )
    spec = SourceSpec("s", None, "events", None, "event_ts")
    [part] = read_partitions(
        con, spec, tmp_path, ["country", "shop"], ["amount"], [], {}, None, None, 1
    )
    assert part.key_table.to_pylist() == [
        {"country": "a", "shop": 1}, {"country": "b", "shop": 1}, {"country": "b", "shop": 2},
    ]  # fmt: skip
    assert part.entity.tolist() == [0, 0, 1, 2]
    assert part.columns["amount"].tolist() == [4.0, 2.0, 3.0, 1.0]
    spine = pa.table({"country": ["b", "z", "a"], "shop": [2, 1, 1]})
    assert part.entities_of(spine).tolist() == [2, -1, 0]


def test_mismatches_with_the_definitions_are_source_errors(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT 1.5 AS user_id, 'x' AS label, 2 AS qty,"
        " TIMESTAMP '2024-01-01' AS event_ts"
    )
    spec = SourceSpec("transactions", None, "events", None, "event_ts")
    with pytest.raises(SourceError, match="key column 'user_id' is float; keys must be"):
        plan_events(con, spec, tmp_path, ["user_id"], [], [])
    with pytest.raises(SourceError, match="column 'label' is string but the compiled"):
        plan_events(con, spec, tmp_path, ["qty"], ["label"], [])
    with pytest.raises(SourceError, match="column 'qty' is int but the compiled"):
        plan_events(con, spec, tmp_path, ["label"], ["qty"], ["qty"])
    with pytest.raises(SourceError, match=r"no column 'amount'.*needed by the feature"):
        plan_events(con, spec, tmp_path, ["qty"], ["amount"], [])


def test_planned_query_is_plain_data_for_worker_processes(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "offline.duckdb"))
    con.execute(
        "CREATE TABLE events AS SELECT i % 10 AS user_id, TIMESTAMP '2024-01-01'"
        " + to_microseconds(i) AS event_ts, i::DOUBLE AS amount FROM range(100) t(i)"
    )
    spec = SourceSpec("s", None, "events", None, "event_ts")
    planned = plan_events(con, spec, tmp_path, ["user_id"], ["amount"], [])
    query = pickle.loads(pickle.dumps(planned))
    parts = read_partitions(con, spec, tmp_path, ["user_id"], ["amount"], [], {}, None, None, 3)
    for part in parts:
        again = read_partition(con.cursor(), query, {}, part.index, 3)
        assert again.key_table.equals(part.key_table)
        np.testing.assert_array_equal(again.columns["amount"], part.columns["amount"])


def test_suggest_partitions() -> None:
    assert suggest_partitions(0) == 1
    assert suggest_partitions(10, rows_per_partition=4) == 3
    assert suggest_partitions(10_000_000) == 3


spine_keys = st.lists(st.integers(-2, 6), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=event_lists, spine=spine_keys, partitions=st.integers(1, 5), wide=st.booleans())
def test_spine_rows_meet_their_events_with_the_same_entity_ids(
    rows: list[tuple[int, int, dict]], spine: list[int], partitions: int, wide: bool
) -> None:
    """Property: partition p's spine rows get the ids of partition p's events."""
    con = duckdb.connect()
    table = _events_table(rows)
    if wide:  # the source stores keys as INTEGER, the spine gives int64: same partitions
        table = table.set_column(0, "user_id", table.column(0).cast(pa.int32()))
    spec = _table_source(con, table)
    columns = ["amount", "qty", "flag", "category"]
    parts, dictionaries = _read_all(con, spec, "/", columns, ["category"], partitions)
    assert [part.index for part in parts] == list(range(partitions))

    # Every event comes out exactly once, each partition in its total order.
    seen = [row for part in parts for row in _rows_of(part, columns)]
    codes = {name: i for i, name in enumerate(dictionaries["category"])}
    expected = [
        (key, ts, v["amount"], None if v["qty"] is None else float(v["qty"]), float(v["flag"]),
         None if v["category"] is None else float(codes[v["category"]]))
        for key, ts, v in rows
    ]  # fmt: skip
    assert sorted(seen, key=_sort_key) == sorted(expected, key=_sort_key)
    for part in parts:
        assert _rows_of(part, columns) == sorted(_rows_of(part, columns), key=_sort_key)

    spine_table = pa.table({"user_id": pa.array(spine, pa.int64())})
    assignment = partition_of_keys(con, spine_table, {"user_id": ColumnType.INT}, partitions)
    known = {key for key, _, _ in rows}
    for part in parts:
        rows_here = np.flatnonzero(assignment == part.index)
        ids = part.entities_of(spine_table.take(rows_here))
        keys_here = [spine[i] for i in rows_here]
        for key, entity in zip(keys_here, ids.tolist(), strict=True):
            if key in known:
                assert part.key_table.column(0)[entity].as_py() == key
            else:
                assert entity == -1
        # And a key lives in the partition the spine was sent to, nowhere else.
        assert set(part.key_table.column(0).to_pylist()) <= {
            key for key in known if partition_of_keys(
                con, pa.table({"user_id": [key]}), {"user_id": ColumnType.INT}, partitions
            )[0] == part.index
        }  # fmt: skip


@settings(max_examples=15, deadline=None)
@given(keys=st.lists(st.text(max_size=4), min_size=1, max_size=20), partitions=st.integers(2, 4))
def test_string_keys_partition_like_the_spine(keys: list[str], partitions: int) -> None:
    con = duckdb.connect()
    table = pa.table(
        {"user_id": keys, "event_ts": pa.array([_at(BASE)] * len(keys), pa.timestamp("us"))}
    )
    spec = _table_source(con, table)
    spine = pa.table({"user_id": keys})
    assignment = partition_of_keys(con, spine, {"user_id": ColumnType.STRING}, partitions)
    for part in read_partitions(con, spec, "/", ["user_id"], [], [], {}, None, None, partitions):
        mine = spine.take(np.flatnonzero(assignment == part.index))
        ids = part.entities_of(mine)
        assert (ids >= 0).all()
        found = part.key_table.column(0).take(pa.array(ids))
        assert found.to_pylist() == mine.column(0).to_pylist()


def test_csv_and_query_sources_are_staged_and_read_the_same(tmp_path: Path) -> None:
    con = duckdb.connect()
    table = _events_table(
        [
            (i % 3, BASE + (i * 37 % 11) * MINUTE,
             {"amount": float(i % 4), "qty": i, "category": "pq"[i % 2], "flag": i % 3 == 0})
            for i in range(60)
        ]
    )  # fmt: skip
    pq.write_table(table, tmp_path / "events.parquet")
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{tmp_path / 'events.parquet'}'))"
        f" TO '{tmp_path / 'events.csv'}' (HEADER)"
    )
    staging = tmp_path / "staging"
    staging.mkdir()
    columns = ["amount", "qty", "category", "flag"]
    sources = [
        SourceSpec("s", "events.parquet", None, None, "event_ts"),
        SourceSpec("s", "events.csv", None, None, "event_ts"),
        SourceSpec("s", None, None, "SELECT * FROM read_parquet('events.parquet')", "event_ts"),
    ]
    results = []
    con.execute(f"SET file_search_path = '{tmp_path}'")
    for spec in sources:
        dictionaries = build_dictionaries(con, spec, tmp_path, ["category"])
        parts = read_partitions(
            con, spec, tmp_path, ["user_id"], columns, ["category"], dictionaries,
            None, BASE + 9 * MINUTE, 6, staging_dir=staging,
        )  # fmt: skip
        results.append([_rows_of(part, columns) for part in parts])
        assert list(staging.iterdir()) == []  # the staged copy is gone
    assert sum(1 for rows in results[0] if not rows) >= 3  # 3 keys, 6 partitions
    assert results[0] == results[1] == results[2]


def test_staged_partitions_match_direct_reads(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT (i % 7)::VARCHAR AS user_id, TIMESTAMP '2024-01-01'"
        " + to_microseconds(i % 5) AS event_ts, (i % 3)::DOUBLE AS amount FROM range(300) t(i)"
    )
    spec = SourceSpec("s", None, "events", None, "event_ts")
    query = plan_events(con, spec, tmp_path, ["user_id"], ["amount"], [])
    staged = stage_partitions(con, query, tmp_path / "staged", 4)
    folders = sorted(path.name for path in (tmp_path / "staged").iterdir())
    assert folders and all(name.startswith("__partition=") for name in folders)
    for partition in range(4):
        direct = read_partition(con, query, {}, partition, 4)
        again = read_partition(con, staged, {}, partition, 4)
        assert again.key_table.equals(direct.key_table)
        np.testing.assert_array_equal(again.entity, direct.entity)
        np.testing.assert_array_equal(again.ts, direct.ts)
        np.testing.assert_array_equal(again.columns["amount"], direct.columns["amount"])
    with pytest.raises(ValueError, match="staged for 4 partitions, not 3"):
        read_partition(con, staged, {}, 0, 3)


def test_bad_sources_fail_when_called_not_when_iterated(tmp_path: Path) -> None:
    con = duckdb.connect()
    spec = SourceSpec("transactions", "missing.parquet", None, None, "event_ts")
    with pytest.raises(SourceError, match="file not found"):
        read_partitions(con, spec, tmp_path, ["user_id"], [], [], {}, None, None, 2)
    with pytest.raises(ValueError, match="no dictionary given for string column 'category'"):
        read_partitions(con, spec, tmp_path, ["user_id"], ["category"], ["category"], {},
                        None, None, 2)  # fmt: skip


def test_nanosecond_timestamps_are_floored_like_spines(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT 1 AS user_id, t AS event_ts, t AS seen FROM (VALUES"
        " (TIMESTAMP_NS '2024-01-01 00:00:00.000001999'),"
        " (TIMESTAMP_NS '1969-12-31 23:59:59.999999500')) v(t)"
    )
    spec = SourceSpec("s", None, "events", None, "event_ts")
    [part], _ = _read_all(con, spec, tmp_path, ["seen"], [], 1)
    assert part.ts.tolist() == [-1, BASE + 1]
    assert part.columns["seen"].tolist() == [-1.0, float(BASE + 1)]
    [part], _ = _read_all(con, spec, tmp_path, ["seen"], [], 1, BASE + 1, BASE + 2)
    assert part.ts.tolist() == [BASE + 1]


def test_partition_arrays_are_writable_numpy(tmp_path: Path) -> None:
    con = duckdb.connect()
    rows = [(1, BASE, {"amount": 1.0, "qty": 2, "category": "a", "flag": True})] * 3
    spec = _table_source(con, _events_table(rows))
    [part], _ = _read_all(con, spec, tmp_path, ["amount", "category"], ["category"], 1)
    arrays = [part.entity, part.ts, *part.columns.values()]
    assert all(array.flags.writeable and array.flags.c_contiguous for array in arrays)
