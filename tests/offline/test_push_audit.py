"""The audit record of pushes, through the SDK: written in each push's own segment,
read back with `FeatureStore.push_audit`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError
from featurestore.offline.push_audit import AUDIT_KEY, UNKNOWN, PushRecord
from featurestore.offline.segments import (
    SEGMENT_PREFIX,
    SEGMENT_SUFFIX,
    append_segment,
    list_segments,
    segment_dir,
)
from tests.serving.test_limits import applied_project, push_rows


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    """The demo project, applied, local online store, nothing materialized."""
    opened = FeatureStore(applied_project(tmp_path / "demo"))
    yield opened
    opened.close()


def test_an_sdk_push_is_recorded_in_its_segment(store: FeatureStore) -> None:
    before = datetime.now(UTC)
    result = store.push("transactions", push_rows(2)["rows"])
    [record] = store.push_audit()
    assert record == PushRecord(record.time, "transactions", 2, "sdk", None, None,
                                result.segment)
    assert before <= record.time <= datetime.now(UTC)
    # In the Parquet footer of the segment that holds the rows.
    footer = pq.read_metadata(result.segment)
    assert AUDIT_KEY.encode() in footer.metadata and footer.num_rows == 2


def test_origin_given_by_keyword(store: FeatureStore) -> None:
    store.push("transactions", push_rows(1)["rows"], via="http", token="ingest",
               client="10.0.0.7:51234")
    [record] = store.push_audit()
    assert (record.via, record.token, record.client) == ("http", "ingest", "10.0.0.7:51234")
    assert record.as_json() == {"time": record.time.isoformat(), "source": "transactions",
                                "rows": 1, "via": "http", "token": "ingest",
                                "client": "10.0.0.7:51234", "segment": record.segment.name}


def test_a_refused_push_records_nothing(store: FeatureStore) -> None:
    with pytest.raises(InputError):
        store.push("transactions", [{"user_id": "x"}])
    with pytest.raises(InputError):
        store.push("nope", push_rows(1)["rows"])
    with pytest.raises(InputError, match="via: expected one of http, sdk, cli, got 'mail'"):
        store.push("transactions", push_rows(1)["rows"], via="mail")
    store.push("transactions", [])  # nothing to store, nothing to record
    assert store.push_audit() == []
    assert list_segments(segment_dir(store.offline_path.parent, "transactions")) == []


def test_source_and_since_select_oldest_first(store: FeatureStore) -> None:
    store.push("transactions", push_rows(1)["rows"])
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    store.push("transactions", push_rows(2)["rows"], via="cli")
    assert [(r.rows, r.via) for r in store.push_audit()] == [(1, "sdk"), (2, "cli")]
    assert [r.rows for r in store.push_audit(since=middle)] == [2]
    assert [r.rows for r in store.push_audit(since=middle.isoformat())] == [2]
    assert [r.rows for r in store.push_audit(source="transactions")] == [1, 2]
    assert store.push_audit(since=datetime.now(UTC)) == []
    with pytest.raises(InputError, match="'since': expected an ISO-8601 timestamp"):
        store.push_audit(since="yesterday")
    with pytest.raises(InputError, match=r"^unknown source 'transaction' \(did you mean "
                                         r"'transactions'\?\)$"):
        store.push_audit(source="transaction")


def test_segments_older_than_the_audit_read_as_unknown(store: FeatureStore) -> None:
    old = append_segment(store.offline_path.parent, "transactions",
                         pa.table({"user_id": [1, 2, 3]}))
    store.push("transactions", push_rows(1)["rows"])
    first, second = store.push_audit()
    assert (first.segment, first.rows, first.via, first.token, first.client) == (
        old, 3, UNKNOWN, None, None)
    assert first.time <= second.time and second.via == "sdk"


def test_since_reads_no_footer_of_a_segment_named_long_before(store: FeatureStore) -> None:
    store.push("transactions", push_rows(1)["rows"])
    folder = segment_dir(store.offline_path.parent, "transactions")
    # Written a day ago and unreadable: a `since` of now must not even open it.
    day_ago_ns = time.time_ns() - 86_400 * 10**9
    (folder / f"{SEGMENT_PREFIX}{day_ago_ns:020d}-1-000000000000{SEGMENT_SUFFIX}"
     ).write_bytes(b"not parquet")
    since = datetime.fromtimestamp(time.time() - 3600, UTC)
    assert [record.rows for record in store.push_audit(since=since)] == [1]
