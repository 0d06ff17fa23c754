"""Saved training sets: stored with a manifest, reproduced byte for byte, and told apart
from their sources when those change (`featurestore.offline.saved_sets`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError, NotAppliedError
from featurestore.offline.saved_sets import parquet_bytes
from tests.projects import DEMO_TEXT, write_demo_project

# The demo's sample events span January 2024.
SPINE = pd.DataFrame({
    "user_id": [1, 2, 3, 1],
    "event_ts": pd.to_datetime(["2024-01-20 00:00", "2024-01-25 12:00", "2024-02-01 00:00",
                                "2024-01-28 00:00"], utc=True),
    "amount_now": [25.0, 980.0, 12.5, 40.0],
})
QUERY_SOURCE = DEMO_TEXT.replace(
    "    path: data/transactions.parquet",
    "    query: SELECT * FROM read_parquet('data/transactions.parquet')")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    return write_demo_project(tmp_path / "project", events=500, users=10)


def applied(project: Path) -> FeatureStore:
    store = FeatureStore(project)
    store.apply()
    return store


def rewrite_one_amount(path: Path) -> None:
    """Rewrite a Parquet file with one changed amount, for a user and time the spine
    sees (user 1's events before its first spine time)."""
    events = pq.read_table(path).to_pandas()
    cutoff = pd.Timestamp("2024-01-20", tz="UTC")
    index = events[(events.user_id == 1) & (events.event_ts < cutoff)].index[-1]
    events.loc[index, "amount"] += 1_000.0
    pq.write_table(pa.Table.from_pandas(events, preserve_index=False), path)


def test_parquet_writes_repeat_byte_for_byte_whatever_the_chunking() -> None:
    table = pa.table({"x": list(range(1_000)), "s": [f"v{i % 7}" for i in range(1_000)]})
    chunked = pa.concat_tables([table.slice(0, 300), table.slice(300)])
    first = parquet_bytes(table)
    assert parquet_bytes(table) == first
    assert parquet_bytes(chunked) == first
    # Nothing time-dependent in the footer: only Arrow's schema beside the writer name.
    metadata = pq.ParquetFile(pa.BufferReader(first)).metadata
    assert set(metadata.metadata) == {b"ARROW:schema"}
    assert metadata.created_by.startswith("parquet-cpp-arrow version")


def test_save_then_reproduce_is_byte_for_byte_identical(project: Path) -> None:
    store = applied(project)
    saved = store.save_training_set("fraud_jan", SPINE, service="fraud_v1")
    folder = project / "data" / "training-sets" / "fraud_jan"
    assert saved.data_path == folder / "data.parquet"
    assert sorted(path.name for path in folder.iterdir()) == [
        "data.parquet", "manifest.json", "spine.parquet"]
    data = saved.data_path.read_bytes()
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    pd.testing.assert_frame_equal(pd.read_parquet(saved.data_path),
                                  store.get_training_set(SPINE, service="fraud_v1"))

    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["features"] == [
        "user_txn:amount_sum_7d", "user_txn:txn_count_1h", "txn_context:amount_z",
        "user_txn:last_category"]
    assert manifest["output"]["sha256"] == saved.sha256
    assert manifest["spine"]["sha256"] == hashlib.sha256(
        (folder / "spine.parquet").read_bytes()).hexdigest()
    inputs = manifest["inputs"]
    assert inputs["registry"] == {"version": 1, "hash": store.applied().registry_hash}
    source_file = project / "data" / "transactions.parquet"
    [fingerprint] = inputs["sources"]["transactions"]["files"]
    assert fingerprint == {"path": str(source_file), "size": source_file.stat().st_size,
                           "mtime_ns": source_file.stat().st_mtime_ns, "rows": 500}
    assert set(inputs["versions"]) == {"featurestore", "numpy", "numba", "duckdb", "pyarrow",
                                       "python"}
    assert inputs["engine"]
    assert dt.datetime.fromisoformat(manifest["created"]).tzinfo is not None

    # A new store, as another process would see it: the same bytes again.
    result = FeatureStore(project).reproduce_training_set("fraud_jan")
    assert (result.identical, result.sha256, result.changes) == (True, saved.sha256, ())
    assert result.render() == (f"training set fraud_jan: byte for byte the same "
                               f"(sha256 {saved.sha256})")
    [entry] = store.list("training-sets")
    assert (entry.kind, entry.name) == ("training set", "fraud_jan")
    assert entry.summary.startswith("4 rows, registry version 1, created ")


def test_a_rewritten_source_file_is_named(project: Path) -> None:
    store = applied(project)
    store.save_training_set("fraud_jan", SPINE, service="fraud_v1")
    rewrite_one_amount(project / "data" / "transactions.parquet")
    result = FeatureStore(project).reproduce_training_set("fraud_jan")
    assert not result.identical
    [change] = result.changes
    assert change.startswith("source transactions: file changed: data/transactions.parquet (")
    assert "modification time" in change
    assert "not reproduced" in result.render()
    assert "data/transactions.parquet" in result.render()


def test_a_push_to_the_source_names_the_pushed_segment(project: Path) -> None:
    store = applied(project)
    store.save_training_set("fraud_jan", SPINE, features=["user_txn:amount_sum_7d"])
    store.push("transactions", [{
        "user_id": 1, "event_ts": dt.datetime(2024, 1, 19, tzinfo=dt.UTC), "amount": 77.0,
        "merchant_category": "grocery"}])
    result = FeatureStore(project).reproduce_training_set("fraud_jan")
    assert not result.identical
    [segment] = (project / "data" / "pushed" / "transactions").glob("segment-*.parquet")
    assert result.changes == (
        f"source transactions: pushed segment added: "
        f"{segment.relative_to(project)}",)


def test_a_touched_file_that_gives_the_same_bytes_is_noted(project: Path) -> None:
    store = applied(project)
    saved = store.save_training_set("fraud_jan", SPINE, service="fraud_v1")
    source_file = project / "data" / "transactions.parquet"
    stat = source_file.stat()
    os.utime(source_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    result = FeatureStore(project).reproduce_training_set("fraud_jan")
    assert result.identical
    assert result.render().splitlines() == [
        f"training set fraud_jan: byte for byte the same (sha256 {saved.sha256})",
        "  these inputs changed without changing the result:",
        "  source transactions: file changed: data/transactions.parquet (modification time)",
    ]


def test_a_changed_query_source_is_told_by_its_checksum(project: Path) -> None:
    (project / "registry.yaml").write_text(QUERY_SOURCE)
    store = applied(project)
    saved = store.save_training_set("by_query", SPINE, features=["user_txn:amount_sum_7d"])
    table = orjson.loads(saved.manifest_path.read_bytes())["inputs"]["sources"][
        "transactions"]["table"]
    assert table["rows"] == 500
    assert FeatureStore(project).reproduce_training_set("by_query").identical
    rewrite_one_amount(project / "data" / "transactions.parquet")
    result = FeatureStore(project).reproduce_training_set("by_query")
    assert not result.identical
    assert result.changes == ("source transactions: table rows or checksum changed "
                              "(500 rows → 500 rows)",)


def test_a_changed_registry_is_named(project: Path) -> None:
    store = applied(project)
    store.save_training_set("fraud_jan", SPINE, features=["user_txn:amount_sum_7d"])
    (project / "registry.yaml").write_text(DEMO_TEXT.replace(
        "amount_sum_7d:    {agg: sum,  expr: amount, window: 7d}",
        "amount_sum_7d:    {agg: sum,  expr: amount * 2, window: 7d}"))
    result = FeatureStore(project).reproduce_training_set("fraud_jan")
    assert not result.identical
    [change] = result.changes
    assert change.startswith("registry: version 1 (sha256 ") and " is now unapplied " in change


def test_an_existing_name_needs_overwrite(project: Path) -> None:
    store = applied(project)
    first = store.save_training_set("fraud_jan", SPINE, service="fraud_v1")
    with pytest.raises(InputError, match=r"a training set named 'fraud_jan' already exists"
                                         r".*overwrite"):
        store.save_training_set("fraud_jan", SPINE.head(2), service="fraud_v1")
    replaced = store.save_training_set("fraud_jan", SPINE.head(2), service="fraud_v1",
                                       overwrite=True)
    assert replaced.sha256 != first.sha256
    assert [entry.summary.split(",")[0] for entry in store.list("training-sets")] == ["2 rows"]
    assert store.reproduce_training_set("fraud_jan").identical


def test_saving_needs_the_registry_applied_as_it_is(project: Path) -> None:
    with pytest.raises(NotAppliedError, match=r"run `featurestore apply`"):
        FeatureStore(project).save_training_set("early", SPINE, service="fraud_v1")
    applied(project)
    (project / "registry.yaml").write_text(DEMO_TEXT + "# edited\n")
    with pytest.raises(NotAppliedError, match=r"not applied: run `featurestore apply`"):
        FeatureStore(project).save_training_set("edited", SPINE, service="fraud_v1")
    assert not (project / "data" / "training-sets").exists()


def test_unknown_and_invalid_names(project: Path) -> None:
    store = applied(project)
    store.save_training_set("fraud_jan", SPINE, service="fraud_v1")
    with pytest.raises(InputError, match=r"no saved training set named 'fraud_jn' "
                                         r"\(did you mean 'fraud_jan'\?\)"):
        store.reproduce_training_set("fraud_jn")
    with pytest.raises(InputError, match=r"training set name '../x'"):
        store.save_training_set("../x", SPINE, service="fraud_v1")
