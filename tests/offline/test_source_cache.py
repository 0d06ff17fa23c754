"""Parquet copies of CSV sources: read instead of the CSV while its files are unchanged,
refreshed when they change, equal to reading the CSV, safe to use from several readers."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.errors import SourceError
from featurestore.offline import source_cache
from featurestore.offline.dictionaries import build_dictionaries
from featurestore.offline.events import read_partitions
from featurestore.offline.schema import describe_relation
from featurestore.offline.source_cache import COPY_FILE, META_FILE, SourceCache
from featurestore.offline.sources import (
    SourceSpec,
    base_relation,
    count_rows,
    fetch_table,
    quote_literal,
)
from tests.projects import DEMO_TEXT, write_demo_project

# Every kind of column a CSV yields: offsets (TIMESTAMPTZ), naive times, dates, quoted
# and non-ASCII strings, nulls, NaN, booleans.
CSV = "".join(line + "\n" for line in [
    "user_id,event_ts,seen_at,day,amount,qty,flag,category",
    '1,2024-01-01 10:00:00.123456+02,2024-01-01 08:00:00.5,2024-01-01,1.5,3,true,"a,""b"""',
    "1,2024-01-01 11:00:00-05:30,2024-01-02 09:00:00,2024-01-02,,4,false,héllo",
    "2,2024-01-02 00:00:00+00,,,nan,,true,",
    "2,2024-01-02 00:00:00+00,2024-01-03 00:00:00,2024-01-03,2.25,7,,zz",
    "3,2024-01-03 12:30:00+00,2024-01-04 00:00:00,2024-01-04,-0.0,-1,false,a",
])
COLUMNS = ["seen_at", "day", "amount", "qty", "flag", "category"]


def _spec(path: str = "events.csv") -> SourceSpec:
    return SourceSpec("events", path, None, None, "event_ts")


def _rows(spec: SourceSpec, base_dir: Path) -> pa.Table:
    """Every row of the source itself, in a fixed order."""
    with duckdb.connect() as con:
        return fetch_table(con, f"SELECT * FROM {base_relation(spec, base_dir)} "
                                "ORDER BY ALL NULLS LAST")


def _assert_same(got: pa.Table, expected: pa.Table) -> None:
    """Equal schemas and values; floats bit for bit (NaN equals NaN, -0.0 is not 0.0)."""
    assert got.schema == expected.schema
    for one, other in zip(got.columns, expected.columns, strict=True):
        one, other = one.combine_chunks(), other.combine_chunks()
        assert one.is_null().equals(other.is_null())
        if pa.types.is_floating(one.type):
            bits = [np.asarray(values.fill_null(0.0).to_numpy()).view(np.int64)
                    for values in (one, other)]
            np.testing.assert_array_equal(*bits)
        else:
            assert one.equals(other)


def _types(spec: SourceSpec, base_dir: Path) -> list[tuple[str, str]]:
    with duckdb.connect() as con:
        return list(describe_relation(con, base_relation(spec, base_dir)).items())


def _entries(cache: Path) -> list[Path]:
    folder = cache / "events"
    return sorted(folder.iterdir()) if folder.exists() else []


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the copies written from now on."""
    calls: list[int] = []
    write = source_cache._write_copy

    def counted(*args: object, **kwargs: object) -> bool:
        calls.append(1)
        return write(*args, **kwargs)

    monkeypatch.setattr(source_cache, "_write_copy", counted)
    return calls


def _same_size_rewrite(path: Path, old: str, new: str) -> None:
    """Replace text in a file keeping its size and modification time."""
    before = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.fixture()
def csv_dir(tmp_path: Path) -> Path:
    (tmp_path / "events.csv").write_text(CSV)
    return tmp_path


def test_the_copy_has_the_rows_and_types_of_the_csv(csv_dir: Path) -> None:
    with SourceCache(csv_dir / "cache") as cache:
        copied = cache.use(_spec(), csv_dir)
        assert copied.cached is not None
        assert base_relation(copied, csv_dir).startswith("read_parquet(")
        assert Path(copied.cached.parquet).is_file()
        assert _types(copied, csv_dir) == _types(_spec(), csv_dir)
        assert dict(_types(copied, csv_dir))["event_ts"] == "TIMESTAMP WITH TIME ZONE"
        _assert_same(_rows(copied, csv_dir), _rows(_spec(), csv_dir))
        con = duckdb.connect()
        assert count_rows(con, copied, csv_dir) == count_rows(con, _spec(), csv_dir) == 5
        words = build_dictionaries(con, _spec(), csv_dir, ["category"])
        assert build_dictionaries(con, copied, csv_dir, ["category"]) == words
        for partitions in (1, 3):
            direct, cached = (
                list(read_partitions(con, spec, csv_dir, ["user_id"], COLUMNS, ["category"],
                                     {"category": list(words["category"])}, None, None,
                                     partitions))
                for spec in (_spec(), copied)
            )  # fmt: skip
            for one, other in zip(direct, cached, strict=True):
                assert one.key_table.equals(other.key_table)
                np.testing.assert_array_equal(one.entity, other.entity)
                np.testing.assert_array_equal(one.ts, other.ts)
                for name in COLUMNS:
                    np.testing.assert_array_equal(one.columns[name], other.columns[name])


def test_a_second_use_reads_the_copy_and_does_not_parse_the_csv(
    csv_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SourceCache(csv_dir / "cache") as cache:
        first = cache.use(_spec(), csv_dir)
    assert first.cached is not None
    # Change the copy behind the cache's back: only a read of the copy can see this.
    copy = first.cached.parquet
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * REPLACE (qty * 100 AS qty) FROM read_parquet("
                    f"{quote_literal(copy)})) TO {quote_literal(copy + '.new')} (FORMAT parquet)")
    os.replace(copy + ".new", copy)
    writes = _count_writes(monkeypatch)
    with SourceCache(csv_dir / "cache") as cache:
        second = cache.use(_spec(), csv_dir)
        assert second.cached == first.cached
        quantities = _rows(second, csv_dir).column("qty").to_pylist()
    assert writes == []
    assert sorted(quantities, key=lambda value: (value is None, value)) == [
        -100, 300, 400, 700, None]


def test_a_changed_csv_gets_a_new_copy_and_the_old_one_goes(
    csv_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SourceCache(csv_dir / "cache") as cache:
        old = cache.use(_spec(), csv_dir).cached
    with (csv_dir / "events.csv").open("a") as handle:
        handle.write("4,2024-01-05 00:00:00+00,,,9.5,1,true,new\n")
    writes = _count_writes(monkeypatch)
    with SourceCache(csv_dir / "cache") as cache:
        new = cache.use(_spec(), csv_dir)
        assert new.cached is not None and new.cached != old
        _assert_same(_rows(new, csv_dir), _rows(_spec(), csv_dir))
        assert _rows(new, csv_dir).num_rows == 6
    assert writes == [1]
    assert _entries(csv_dir / "cache") == [Path(new.cached.parquet).parent]


def test_a_rewrite_keeping_size_and_modification_time_is_seen(csv_dir: Path) -> None:
    with SourceCache(csv_dir / "cache") as cache:
        old = cache.use(_spec(), csv_dir).cached
    _same_size_rewrite(csv_dir / "events.csv", "2.25,7", "8.25,9")
    with SourceCache(csv_dir / "cache") as cache:
        new = cache.use(_spec(), csv_dir)
        assert new.cached != old
        amounts = _rows(new, csv_dir).column("amount").to_pylist()
    assert 8.25 in amounts and 2.25 not in amounts


def test_a_file_whose_times_did_not_move_is_checked_by_its_content(
    csv_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # File times that did not move (a write in the same clock tick) must not serve the
    # old copy: the file is younger than the margin, so its content is compared.
    path = str(csv_dir / "events.csv")
    with SourceCache(csv_dir / "cache") as cache:
        old = cache.use(_spec(), csv_dir).cached
    frozen = source_cache.file_states([path])
    _same_size_rewrite(csv_dir / "events.csv", "2.25,7", "8.25,9")
    monkeypatch.setattr(source_cache, "file_states", lambda paths: frozen)
    with SourceCache(csv_dir / "cache") as cache:
        new = cache.use(_spec(), csv_dir)
        assert new.cached == old  # the same key, since the times are the same
        amounts = _rows(new, csv_dir).column("amount").to_pylist()
    assert 8.25 in amounts and 2.25 not in amounts


def test_a_racy_copy_is_hashed_until_its_files_are_older_than_the_margin(
    csv_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(csv_dir / "events.csv")
    with SourceCache(csv_dir / "cache") as cache:
        copy = cache.use(_spec(), csv_dir).cached
    meta_path = Path(copy.parquet).with_name(META_FILE)
    meta = source_cache.orjson.loads(meta_path.read_bytes())
    assert list(meta["digests"]) == [path]  # just written: racy
    hashed: list[str] = []
    digest = source_cache._digest
    monkeypatch.setattr(source_cache, "_digest", lambda name: hashed.append(name) or digest(name))
    # A margin that leaves the file racy for the copy's time but not for a later check.
    changed = source_cache.file_states([path])[0].changed_ns
    monkeypatch.setattr(source_cache, "RACY_MARGIN_NS", meta["verified_ns"] - changed)
    for _ in range(2):
        with SourceCache(csv_dir / "cache") as cache:
            assert cache.use(_spec(), csv_dir).cached == copy
    assert hashed == [path]  # checked once, then trusted
    verified = source_cache.orjson.loads(meta_path.read_bytes())["verified_ns"]
    assert verified > meta["verified_ns"]


def test_a_copy_in_use_stays_until_released(csv_dir: Path) -> None:
    reader = SourceCache(csv_dir / "cache")
    old = reader.use(_spec(), csv_dir)
    expected = _rows(_spec(), csv_dir)
    (csv_dir / "events.csv").write_text(CSV + "5,2024-01-06 00:00:00+00,,,1,1,true,x\n")
    with SourceCache(csv_dir / "cache") as writer:
        new = writer.use(_spec(), csv_dir)
    assert len(_entries(csv_dir / "cache")) == 2
    _assert_same(_rows(old, csv_dir), expected)
    reader.close()
    (csv_dir / "events.csv").write_text(CSV)
    with SourceCache(csv_dir / "cache") as writer:
        newest = writer.use(_spec(), csv_dir)
    assert newest.cached not in (old.cached, new.cached)
    assert _entries(csv_dir / "cache") == [Path(newest.cached.parquet).parent]


def test_abandoned_temporary_folders_go_and_live_ones_stay(csv_dir: Path) -> None:
    folder = csv_dir / "cache" / "events"
    abandoned, live = folder / ".tmp-abandoned", folder / ".tmp-live"
    for temporary in (abandoned, live):
        temporary.mkdir(parents=True)
        (temporary / source_cache.LOCK_FILE).touch()
    with (live / source_cache.LOCK_FILE).open("rb") as lock:
        source_cache.fcntl.flock(lock, source_cache.fcntl.LOCK_SH)
        with SourceCache(csv_dir / "cache") as cache:
            copy = cache.use(_spec(), csv_dir).cached
        assert _entries(csv_dir / "cache") == sorted([live, Path(copy.parquet).parent])


def test_concurrent_first_uses_agree_on_one_copy(csv_dir: Path) -> None:
    results: list[pa.Table] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def use() -> None:
        try:
            start.wait()
            with SourceCache(csv_dir / "cache") as cache:
                results.append(_rows(cache.use(_spec(), csv_dir), csv_dir))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected = _rows(_spec(), csv_dir)
    assert len(results) == 4
    for result in results:
        _assert_same(result, expected)
    entries = _entries(csv_dir / "cache")
    assert len(entries) == 1 and (entries[0] / COPY_FILE).is_file()


def test_a_glob_is_copied_as_the_files_it_matches(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("user_id,event_ts,amount\n1,2024-01-01 10:00:00,2.5\n")
    (tmp_path / "b.csv").write_text("user_id,event_ts,amount,note\n2,2024-01-02 10:00:00,1,x\n")
    spec = _spec("*.csv")
    with SourceCache(tmp_path / "cache") as cache:
        copied = cache.use(spec, tmp_path)
        assert copied.cached is not None
        assert _types(copied, tmp_path) == _types(spec, tmp_path)
        _assert_same(_rows(copied, tmp_path), _rows(spec, tmp_path))
        # Narrowed to some files, the spec reads them, not the copy of all.
        one = dataclasses.replace(copied, files=(str(tmp_path / "a.csv"),))
        assert base_relation(one, tmp_path).startswith("read_csv_auto(")
        assert _rows(one, tmp_path).num_rows == 1
    (tmp_path / "c.csv").write_text("user_id,event_ts,amount\n3,2024-01-03 10:00:00,4\n")
    with SourceCache(tmp_path / "cache") as cache:
        grown = cache.use(spec, tmp_path)
        assert grown.cached != copied.cached
        _assert_same(_rows(grown, tmp_path), _rows(spec, tmp_path))
        assert _rows(grown, tmp_path).num_rows == 3


@pytest.mark.parametrize(
    "make",
    [
        lambda folder: SourceSpec("events", "events.parquet", None, None, "event_ts"),
        lambda folder: SourceSpec("events", None, "events", None, "event_ts"),
        lambda folder: SourceSpec("events", None, None, "SELECT * FROM 'events.csv'", "event_ts"),
        lambda folder: SourceSpec("events", "events.csv", None, None, "event_ts",
                                  files=(str(folder / "events.csv"),)),
    ],
    ids=["parquet", "table", "query", "narrowed"],
)
def test_parquet_tables_queries_and_narrowed_specs_are_not_copied(
    csv_dir: Path, make: Callable[[Path], SourceSpec]
) -> None:
    spec = make(csv_dir)
    with SourceCache(csv_dir / "cache") as cache:
        assert cache.use(spec, csv_dir) is spec
    assert not (csv_dir / "cache").exists()


def test_a_csv_parquet_cannot_hold_exactly_is_read_directly(tmp_path: Path) -> None:
    # DuckDB reads this integer as HUGEINT; Parquet would hold it as DOUBLE.
    (tmp_path / "events.csv").write_text(
        "user_id,event_ts,big\n1,2024-01-01 10:00:00,170141183460469231731687303715884105727\n")
    with SourceCache(tmp_path / "cache") as cache:
        spec = cache.use(_spec(), tmp_path)
    assert spec.cached is None
    assert _entries(tmp_path / "cache") == []


def test_a_missing_csv_fails_as_it_always_did(tmp_path: Path) -> None:
    with SourceCache(tmp_path / "cache") as cache:
        spec = cache.use(_spec("missing.csv"), tmp_path)
    assert spec == _spec("missing.csv")
    with pytest.raises(SourceError, match="file not found"):
        count_rows(duckdb.connect(), spec, tmp_path)


@pytest.fixture()
def csv_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo project with its transactions in a CSV file."""
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    text = DEMO_TEXT.replace("data/transactions.parquet", "data/transactions.csv")
    project = write_demo_project(tmp_path / "project", text, events=3_000, users=40, days=31)
    data = project / "data"
    parquet, csv = (quote_literal(str(data / name))
                    for name in ("transactions.parquet", "transactions.csv"))
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_parquet({parquet})) TO {csv} (HEADER)")
    (data / "transactions.parquet").unlink()
    return project


def _copies(project: Path) -> list[Path]:
    return sorted((project / "data" / ".featurestore-cache" / "sources" / "transactions")
                  .glob(f"*/{COPY_FILE}"))


def test_training_sets_and_snapshots_read_the_copy_and_equal_the_csv(
    csv_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore(csv_project)
    spine = pa.table({
        "user_id": pa.array([1, 2, 3, 1, 7], pa.int64()),
        "event_ts": pa.array(np.array(["2024-01-10", "2024-01-20", "2024-01-31", "2024-01-31",
                                       "2024-01-15"], dtype="datetime64[us]")),
        "amount_now": [10.0, 20.0, 30.0, 40.0, 50.0],
    })  # fmt: skip
    writes = _count_writes(monkeypatch)
    cached = store.get_training_set(spine, service="fraud_v1", output="arrow")
    snapshot = store.snapshot(at="2024-01-25", output="arrow")
    assert len(writes) == 1 and len(_copies(csv_project)) == 1
    # A training set reads the copy: a change to the copy shows, and nothing is rewritten.
    copy = str(_copies(csv_project)[0])
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * REPLACE (amount * 2 AS amount) FROM read_parquet("
                    f"{quote_literal(copy)})) TO {quote_literal(copy + '.new')} (FORMAT parquet)")
    os.replace(copy + ".new", copy)
    doubled = store.get_training_set(spine, service="fraud_v1", output="arrow")
    assert len(writes) == 1
    sums = cached.column("amount_sum_7d").to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(doubled.column("amount_sum_7d").to_numpy(zero_copy_only=False),
                               2 * sums)
    assert np.nansum(sums) > 0
    monkeypatch.setattr(source_cache, "is_cacheable", lambda spec: False)
    _assert_same(cached, store.get_training_set(spine, service="fraud_v1", output="arrow"))
    _assert_same(snapshot, store.snapshot(at="2024-01-25", output="arrow"))


def test_materialization_reads_the_copy_and_equals_the_csv(
    csv_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A glob: a file of late events (of any time) joins it between two runs.
    registry = csv_project / "registry.yaml"
    registry.write_text(registry.read_text().replace("transactions.csv", "transactions*.csv"))
    data = csv_project / "data"
    csv, late = (quote_literal(str(path))
                 for path in (data / "transactions.csv", tmp_path / "late.csv"))
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv_auto({csv})")
        every_tenth = "(epoch(event_ts)::BIGINT // 60) % 10 = 0"
        con.execute(f"COPY (SELECT * FROM events WHERE NOT {every_tenth}) TO {csv} (HEADER)")
        con.execute(f"COPY (SELECT * FROM events WHERE {every_tenth}) TO {late} (HEADER)")
    store = FeatureStore(csv_project)
    store.apply()

    def written() -> tuple[pa.Table, list[tuple]]:
        with duckdb.connect(str(data / "offline.duckdb"), read_only=True) as con:
            latest = fetch_table(con, "SELECT * FROM features_user_txn ORDER BY user_id")
            states = con.execute("SELECT view, entity, state FROM featurestore_states "
                                 "ORDER BY view, entity").fetchall()
        return latest, states

    writes = _count_writes(monkeypatch)
    store.materialize(end="2024-01-16T07:30:00Z")
    store.materialize(end="2024-01-20T00:00:00Z")
    assert len(writes) == 1
    os.replace(tmp_path / "late.csv", data / "transactions-late.csv")
    run = store.materialize(end="2024-02-01T00:00:00Z").views[0]
    assert run.incremental and run.recomputed > 0
    assert len(writes) == 2 and len(_copies(csv_project)) == 1
    cached = written()
    monkeypatch.setattr(source_cache, "is_cacheable", lambda spec: False)
    store.materialize(end="2024-02-01T00:00:00Z", full=True)
    direct = written()
    _assert_same(cached[0], direct[0])
    assert cached[1] == direct[1]
