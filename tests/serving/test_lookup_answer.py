"""What a lookup answers besides dicts: pandas and Arrow output typed like training sets,
the metadata (found / not found, newest event, materialization end) and the warning for
a lookup at now of data that ended long ago. SDK on both stores, and HTTP."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.errors import FeatureStoreWarning, InputError
from featurestore.serving.server import create_app
from tests.serving.conftest import ALL_FEATURES, DEMO_END

AT = DEMO_END + timedelta(hours=2)
USERS = [1, 2, 3, 999_999]
AMOUNTS = [1.0, None, 30.0, 4.0]
LOOKUP = {"features": ALL_FEATURES, "entities": {"user_id": USERS},
          "request": {"amount_now": AMOUNTS}}


def newest_events(store: FeatureStore, users: list[int], end: datetime) -> list[object]:
    """Each user's newest event before `end`, read from the source file (None: none)."""
    events = pq.read_table(store.base_dir / "data" / "transactions.parquet")
    times = events["event_ts"].cast(pa.timestamp("us", tz="UTC"))  # naive means UTC
    before = events.set_column(events.schema.get_field_index("event_ts"), "event_ts", times)
    before = before.filter(pc.less(times, pa.scalar(end, pa.timestamp("us", tz="UTC"))))
    newest = before.group_by("user_id").aggregate([("event_ts", "max")]).to_pylist()
    by_user = {row["user_id"]: row["event_ts_max"] for row in newest}
    return [by_user.get(user) for user in users]


def spine() -> pd.DataFrame:
    return pd.DataFrame({"user_id": USERS, "event_ts": [AT] * len(USERS),
                         "amount_now": AMOUNTS})


def test_pandas_output_has_the_training_set_dtypes(shared_store: FeatureStore) -> None:
    frame = shared_store.get_online_features(**LOOKUP, at=AT, output="pandas")
    training = shared_store.get_training_set(spine(), features=ALL_FEATURES)
    features = [ref.split(":")[1] for ref in ALL_FEATURES]
    assert list(frame.columns) == ["user_id", *features]
    assert isinstance(frame, pd.DataFrame)
    assert dict(frame[features].dtypes) == dict(training[features].dtypes)
    pd.testing.assert_frame_equal(frame[features], training[features])
    as_dict = shared_store.get_online_features(**LOOKUP, at=AT)
    # A list feature's pandas cells are arrays (as pyarrow gives them), its dict values
    # lists.
    cells = frame.astype(object).where(frame.notna(), None).to_dict("list")
    assert {name: [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
            for name, values in cells.items()} == as_dict


def test_arrow_output_has_the_training_set_types(shared_store: FeatureStore) -> None:
    table = shared_store.get_online_features(**LOOKUP, at=AT, output="arrow", full_names=True)
    training = shared_store.get_training_set(spine(), features=ALL_FEATURES, output="arrow",
                                             full_names=True)
    assert isinstance(table, pa.Table)
    names = table.column_names[1:]
    assert table.column_names[0] == "user_id" and table.schema.field(0).type == pa.int64()
    assert table.select(names).schema == training.select(names).schema
    assert table.select(names).equals(training.select(names))


def test_request_features_alone_come_back_as_tables(shared_store: FeatureStore) -> None:
    frame = shared_store.get_online_features(features=["txn_context:log_amount_now"],
                                             request={"amount_now": [0.0, None]}, at=AT,
                                             output="pandas")
    assert list(frame.columns) == ["log_amount_now"]
    assert frame["log_amount_now"].iloc[0] == 0.0 and pd.isna(frame["log_amount_now"].iloc[1])
    table = shared_store.get_online_features(features=["txn_context:log_amount_now"],
                                             request={"amount_now": [0.0, None]}, at=AT,
                                             output="arrow")
    assert table.num_rows == 2 and table.column_names == ["log_amount_now"]


def test_an_unknown_output_is_refused_with_the_choices(shared_store: FeatureStore) -> None:
    with pytest.raises(InputError, match=r"^output must be one of dict, pandas, arrow, "
                                         r"got 'polars'$"):
        shared_store.get_online_features(**LOOKUP, at=AT, output="polars")


def test_metadata_says_found_and_newest_event(shared_store: FeatureStore) -> None:
    result = shared_store.get_online_features(**LOOKUP, at=AT, include_metadata=True)
    assert set(result) == {"features", "metadata"}
    assert result["features"] == shared_store.get_online_features(**LOOKUP, at=AT)
    metadata = result["metadata"]
    assert metadata["at"] == AT and metadata["warnings"] == []
    assert list(metadata["views"]) == ["user_txn"]  # request views hold no state
    view = metadata["views"]["user_txn"]
    assert view["status"] == ["found", "found", "found", "not_found"]
    assert view["newest_event"] == newest_events(shared_store, USERS, DEMO_END)
    assert view["newest_event"][0] < DEMO_END
    assert view["materialized_until"] == DEMO_END


def test_metadata_with_pandas_output(shared_store: FeatureStore) -> None:
    result = shared_store.get_online_features(**LOOKUP, at=AT, output="pandas",
                                              include_metadata=True)
    assert isinstance(result["features"], pd.DataFrame)
    assert result["metadata"]["views"]["user_txn"]["status"][-1] == "not_found"


def test_a_lookup_at_now_of_old_data_warns(shared_store: FeatureStore) -> None:
    with pytest.warns(FeatureStoreWarning) as caught:
        values = shared_store.get_online_features(**LOOKUP)
    assert values["amount_sum_7d"] == [0.0] * len(USERS)
    (warning,) = caught
    assert str(warning.message) == (
        "feature view 'user_txn' is materialized up to 2024-01-31T00:00:00+00:00, more than "
        "its longest requested window (90d) before now: its windowed features are empty "
        "(count and sum 0, others null); pass at='2024-01-31T00:00:00+00:00' to look up as "
        "of the end of the data, or materialize newer events")
    with pytest.warns(FeatureStoreWarning):
        result = shared_store.get_online_features(**LOOKUP, include_metadata=True)
    assert result["metadata"]["warnings"] == [str(warning.message)]


def test_no_warning_with_a_given_time_or_fresh_data(shared_store: FeatureStore) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared_store.get_online_features(**LOOKUP, at="2100-01-01")
        # A request feature alone reads no view: nothing can be stale.
        shared_store.get_online_features(features=["txn_context:log_amount_now"],
                                         request={"amount_now": [1.0]})


def test_only_a_lookup_whose_every_window_is_empty_warns(demo_store: FeatureStore) -> None:
    now = datetime.now(UTC)
    lookup = {"features": ["user_txn:amount_max_1d"], "entities": {"user_id": [1]}}
    # Two days after the data the 1d window is empty, the 7d one is not: only a lookup
    # of the 1d feature alone warns.
    demo_store.materialize(end=now - timedelta(days=2))
    with pytest.warns(FeatureStoreWarning, match=r"longest requested window \(1d\)"):
        demo_store.get_online_features(**lookup)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo_store.get_online_features(
            features=["user_txn:amount_max_1d", "user_txn:amount_sum_7d"],
            entities={"user_id": [1]})
        # A time given on purpose is taken as meant, however far after the data.
        demo_store.get_online_features(**lookup, at=now + timedelta(days=30))
    demo_store.materialize(end=now - timedelta(hours=23))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = demo_store.get_online_features(**lookup, include_metadata=True)
    assert result["metadata"]["warnings"] == []


def test_pushed_events_move_the_newest_event(demo_store: FeatureStore) -> None:
    pushed = DEMO_END + timedelta(minutes=5)
    before = demo_store.get_online_features(features=["user_txn:txn_count_1h"],
                                            entities={"user_id": [4, 999_998]}, at=AT,
                                            include_metadata=True)["metadata"]
    demo_store.push("transactions", [
        {"user_id": 4, "event_ts": pushed, "amount": 7.0, "merchant_category": "fuel"},
        {"user_id": 999_998, "event_ts": pushed - timedelta(minutes=1), "amount": 1.0,
         "merchant_category": "fuel"}])
    after = demo_store.get_online_features(features=["user_txn:txn_count_1h"],
                                           entities={"user_id": [4, 999_998]}, at=AT,
                                           include_metadata=True)["metadata"]
    assert before["views"]["user_txn"]["status"] == ["found", "not_found"]
    assert after["views"]["user_txn"]["status"] == ["found", "found"]
    assert after["views"]["user_txn"]["newest_event"] == [pushed, pushed - timedelta(minutes=1)]


def test_recently_pushed_events_count_as_fresh_data(demo_store: FeatureStore) -> None:
    now = datetime.now(UTC)
    demo_store.push("transactions", [{"user_id": 4, "event_ts": now - timedelta(hours=1),
                                      "amount": 7.0, "merchant_category": "fuel"}])
    lookup = {"features": ["user_txn:amount_max_1d"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = demo_store.get_online_features(**lookup, entities={"user_id": [4, 5]})
    # User 4's fresh push keeps the view's data inside the 1d window.
    assert values["amount_max_1d"] == [7.0, None]
    with pytest.warns(FeatureStoreWarning) as caught:
        demo_store.get_online_features(**lookup, entities={"user_id": [5]})
    assert str(caught[0].message).startswith(
        "feature view 'user_txn' is materialized up to 2024-01-31T00:00:00+00:00, more ")
    old = (DEMO_END + timedelta(minutes=1)).isoformat()
    demo_store.push("transactions", [{"user_id": 5, "event_ts": old, "amount": 1.0,
                                      "merchant_category": "fuel"}])
    with pytest.warns(FeatureStoreWarning) as caught:
        demo_store.get_online_features(**lookup, entities={"user_id": [5]})
    assert str(caught[0].message).startswith(
        f"the data of feature view 'user_txn' ends at {old} (pushed; materialized up to "
        "2024-01-31T00:00:00+00:00), more ")


def test_incremental_materialization_keeps_the_newest_event(tmp_path: Path,
                                                            online_backend: object) -> None:
    from tests.serving.conftest import make_demo_store

    store = make_demo_store(tmp_path / "demo", online_backend.setting,  # type: ignore[attr-defined]
                            materialize=False)
    try:
        middle = DEMO_END - timedelta(days=10)
        store.materialize(end=middle)
        store.materialize(end=DEMO_END)  # continues every fold with [middle, end)
        users = list(range(1, 40))
        metadata = store.get_online_features(features=["user_txn:txn_count_1h"],
                                             entities={"user_id": users}, at=AT,
                                             include_metadata=True)["metadata"]
        assert metadata["views"]["user_txn"]["newest_event"] == newest_events(
            store, users, DEMO_END)
    finally:
        store.close()


@pytest.fixture(scope="module")
def client(shared_store: FeatureStore) -> Iterator[TestClient]:
    with TestClient(create_app(shared_store)) as test_client:
        yield test_client


def test_http_metadata_is_the_sdk_metadata_as_json(client: TestClient,
                                                   shared_store: FeatureStore) -> None:
    body = {**LOOKUP, "at": AT.isoformat(), "include_metadata": True}
    response = client.post("/online-features", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"features", "metadata"}
    expected = shared_store.get_online_features(**LOOKUP, at=AT)
    assert answer["features"] == expected
    view = answer["metadata"]["views"]["user_txn"]
    assert view["status"] == ["found", "found", "found", "not_found"]
    assert view["newest_event"][3] is None
    assert [datetime.fromisoformat(text) for text in view["newest_event"][:3]] == \
        newest_events(shared_store, USERS[:3], DEMO_END)
    assert view["materialized_until"] == "2024-01-31T00:00:00+00:00"
    assert answer["metadata"]["at"] == "2024-01-31T02:00:00+00:00"
    assert answer["metadata"]["warnings"] == []


def test_http_warns_at_the_top_level_without_metadata(client: TestClient) -> None:
    answer = client.post("/online-features", json=LOOKUP).json()
    assert set(answer) == {"features", "warnings"}
    assert answer["warnings"][0].startswith("feature view 'user_txn' is materialized up to ")
    fresh = client.post("/online-features", json={**LOOKUP, "at": AT.isoformat()}).json()
    assert set(fresh) == {"features"}


def test_http_include_metadata_must_be_a_boolean(client: TestClient) -> None:
    response = client.post("/online-features", json={**LOOKUP, "include_metadata": "yes"})
    assert response.status_code == 400
    assert "include_metadata" in response.json()["error"]["message"]
    response = client.post("/online-features", json={**LOOKUP, "output": "pandas"})
    assert response.status_code == 400


def test_the_openapi_document_describes_the_metadata(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    body = document["paths"]["/online-features"]["post"]["requestBody"]
    assert "include_metadata" in body["content"]["application/json"]["schema"]["properties"]
    answer = schemas["LookupAnswer"]["properties"]
    assert set(answer) == {"features", "fit", "metadata", "warnings"}
    assert set(schemas["LookupMetadata"]["properties"]) == {"at", "views", "warnings"}
    assert set(schemas["ViewMetadata"]["properties"]) == {"status", "newest_event",
                                                          "materialized_until"}
