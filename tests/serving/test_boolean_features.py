"""Boolean features are booleans on every path: training sets (nullable bool), online
dicts (Python bools), pandas and Arrow lookups, HTTP JSON (true/false/null); sums and
means of booleans stay numbers; online equals offline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.serving.server import create_app
from tests.projects import write_demo_project
from tests.serving.conftest import DEMO_END, demo_text, module_online_setting

BOOLEAN_FEATURES = """\
      big_last_1d:      {agg: last, expr: "amount > 100", window: 1d}
      any_big_7d:       {agg: max, expr: "amount > 500", window: 7d}
      all_small_7d:     {agg: min, expr: "amount < 1000", window: 7d}
      big_first_life:   {agg: first, expr: "amount > 100"}
      big_share_7d:     {agg: mean, expr: "amount > 500", window: 7d}
"""
BOOLEAN_REQUEST = """\
      big_now: "amount_now > 100"
      bigger_than_max: "amount_now > user_txn.amount_max_1d"
"""
BOOLEANS = ["user_txn:big_last_1d", "user_txn:any_big_7d", "user_txn:all_small_7d",
            "user_txn:big_first_life", "txn_context:big_now", "txn_context:bigger_than_max"]
NUMBERS = ["user_txn:big_txn_7d", "user_txn:big_share_7d"]
AT = DEMO_END + timedelta(hours=1)
# Users with and without events in the last day, and one never seen.
USERS = [1, 2, 3, 4, 5, 6, 7, 8, 999_999]
AMOUNTS = [50.0, 150.0, None, 1e9, 0.0, 101.0, 99.0, 100.0, 500.0]


def boolean_registry(online: str) -> str:
    text = demo_text(online)
    text = text.replace("    description: A user's card spending.",
                        BOOLEAN_FEATURES + "    description: A user's card spending.", 1)
    return text.replace('      log_amount_now: "log1p(amount_now)"\n',
                        '      log_amount_now: "log1p(amount_now)"\n' + BOOLEAN_REQUEST, 1)


@pytest.fixture(scope="module", params=["redis", "local"])
def store(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    setting = module_online_setting(request)
    directory: Path = tmp_path_factory.mktemp(f"booleans-{request.param}")
    write_demo_project(directory, boolean_registry(setting),
                       events=3_000, users=60, days=30)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
            patch.delenv(name, raising=False)
        opened = FeatureStore(directory)
        opened.apply()
        opened.materialize(end=DEMO_END)
    yield opened
    opened.close()


def spine() -> pd.DataFrame:
    return pd.DataFrame({"user_id": USERS, "event_ts": [AT] * len(USERS),
                         "amount_now": AMOUNTS})


def lookup(store: FeatureStore, **options: object) -> object:
    return store.get_online_features(features=BOOLEANS + NUMBERS, entities={"user_id": USERS},
                                     request={"amount_now": AMOUNTS}, at=AT, **options)


def names(refs: list[str]) -> list[str]:
    return [ref.split(":")[1] for ref in refs]


def test_training_sets_type_booleans_as_nullable_bool(store: FeatureStore) -> None:
    frame = store.get_training_set(spine(), features=BOOLEANS + NUMBERS)
    for name in names(BOOLEANS):
        assert frame[name].dtype == "boolean", name
    assert frame["big_txn_7d"].dtype == "int64"
    assert frame["big_share_7d"].dtype == "float64"
    assert frame["big_now"].tolist() == [False, True, pd.NA, True, False, True, False, False,
                                         True]
    table = store.get_training_set(spine(), features=BOOLEANS + NUMBERS, output="arrow")
    assert {table.schema.field(name).type for name in names(BOOLEANS)} == {pa.bool_()}
    # An unseen entity: no events, so the booleans are null (not False).
    assert [table.column(name)[-1].as_py() for name in names(BOOLEANS)[:4]] == [None] * 4


def test_online_dicts_hold_python_bools_and_equal_the_training_set(store: FeatureStore) -> None:
    online = lookup(store)
    training = store.get_training_set(spine(), features=BOOLEANS + NUMBERS, output="arrow")
    for name in names(BOOLEANS):
        assert all(value is None or type(value) is bool for value in online[name]), name
        assert online[name] == training.column(name).to_pylist(), name
    assert all(type(value) is int for value in online["big_txn_7d"])
    assert online["big_share_7d"] == training.column("big_share_7d").to_pylist()
    assert {True, False} <= set(online["any_big_7d"])  # the data shows both


def test_pandas_and_arrow_lookups_type_booleans_as_training_sets_do(store: FeatureStore) -> None:
    frame = lookup(store, output="pandas")
    training = store.get_training_set(spine(), features=BOOLEANS + NUMBERS)
    columns = names(BOOLEANS + NUMBERS)
    pd.testing.assert_frame_equal(frame[columns], training[columns])
    table = lookup(store, output="arrow")
    assert {table.schema.field(name).type for name in names(BOOLEANS)} == {pa.bool_()}


def test_http_answers_json_booleans(store: FeatureStore) -> None:
    body = {"features": BOOLEANS, "entities": {"user_id": USERS},
            "request": {"amount_now": AMOUNTS}, "at": AT.isoformat()}
    with TestClient(create_app(store)) as client:
        response = client.post("/online-features", json=body)
    assert response.status_code == 200
    assert b'"big_now":[false,true,null,true,false,true,false,false,true]' in response.content
    features = response.json()["features"]
    assert features == store.get_online_features(**{**body, "at": AT})
    for name in names(BOOLEANS):
        assert all(value is None or type(value) is bool for value in features[name])


def test_verify_finds_online_equal_to_offline(store: FeatureStore) -> None:
    report = store.verify(entities=60)
    assert report.ok, report.render()
