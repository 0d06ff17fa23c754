"""Pushed rows are checked against their source's rules before anything is stored: over
HTTP a refused push answers 422 naming the row, column and rule; the SDK raises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.errors import FeatureStoreError
from featurestore.offline.segments import list_segments, segment_dir
from featurestore.serving.server import create_app
from featurestore.validation.errors import PushExpectationError
from tests.conftest import RedisServer
from tests.validation.projects import END, GOOD_ROWS, write_project

EXPECT = ("      amount: {not_null: 0.5, range: [0, 1000], on_fail: quarantine}\n"
          "      merchant_category: {values: [grocery, travel], on_fail: fail}\n"
          "      code: {regex: '[A-Z]-[0-9]+', on_fail: warn}\n")


def good(amount: float | None = 5.0, category: str = "grocery", code: str = "A-7",
         ts: str = "2024-01-10T01:00:00") -> dict[str, object]:
    return {"user_id": 1, "event_ts": ts, "amount": amount, "merchant_category": category,
            "code": code}


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[FeatureStore]:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    online = "local"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("clean_redis")
        online = server.url
    rows = [row for row in GOOD_ROWS if row[3] in ("grocery", "travel")]
    project = write_project(tmp_path / "p", rows, EXPECT, online=online)
    opened = FeatureStore(project)
    opened.apply()
    opened.materialize(end=END)
    yield opened
    opened.close()


def segments(store: FeatureStore) -> list[Path]:
    return list_segments(segment_dir(store.offline_path.parent, "transactions"))


def count(store: FeatureStore) -> int:
    return store.get_online_features(features=["user_txn:txn_count_30d"],
                                     entities={"user_id": [1]},
                                     at="2024-01-10T02:00:00Z")["txn_count_30d"][0]


def test_http_push_breaking_a_quarantine_rule_answers_422(store: FeatureStore) -> None:
    with TestClient(create_app(store)) as client:
        answer = client.post("/push", json={"source": "transactions",
                                            "rows": [good(), good(amount=5000.0)]})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "expectation_failed"
    assert (error["row"], error["column"], error["rule"], error["value"]) == (
        1, "amount", "range", 5000.0)
    assert error["message"] == ("push to 'transactions': row 1: column 'amount' breaks "
                                "range [0, 1000] (value 5000.0, on_fail: quarantine); "
                                "nothing was stored")
    assert segments(store) == []


def test_http_push_breaking_a_fail_rule_answers_422(store: FeatureStore) -> None:
    with TestClient(create_app(store)) as client:
        answer = client.post("/push", json={"source": "transactions",
                                            "rows": [good(category="toys")]})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["row"], error["column"], error["rule"], error["value"], error["policy"]) == (
        0, "merchant_category", "values", "toys", "fail")


def test_http_push_under_warn_is_accepted_with_warnings(store: FeatureStore) -> None:
    before = count(store)
    with TestClient(create_app(store)) as client:
        answer = client.post("/push", json={"source": "transactions",
                                            "rows": [good(code="nope"), good()]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["rows"] == 2
    assert body["warnings"] == ["push to 'transactions': column 'code' breaks regex "
                                "'[A-Z]-[0-9]+' in 1 of 2 rows (first: row 0); on_fail: "
                                "warn, rows kept"]
    assert count(store) == before + 2


def test_sdk_push_raises_with_the_same_facts(store: FeatureStore) -> None:
    with pytest.raises(PushExpectationError) as caught:
        store.push("transactions", [good(), good(), good(amount=-1.0)])
    assert isinstance(caught.value, FeatureStoreError)
    assert caught.value.details == {"source": "transactions", "row": 2, "column": "amount",
                                    "rule": "range", "value": -1.0, "policy": "quarantine"}
    assert segments(store) == []
    assert store.push("transactions", [good()]).warnings == ()


def test_quarantine_refuses_any_breaking_row_whatever_the_tolerance(
        store: FeatureStore) -> None:
    # not_null: 0.5 allows half the rows null, but quarantine keeps each one out anyway.
    with pytest.raises(PushExpectationError, match="row 1: column 'amount' breaks not_null"):
        store.push("transactions", [good(), good(amount=None), good()])


def test_unique_checks_duplicates_within_the_push(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    project = write_project(tmp_path / "u", GOOD_ROWS,
                            "      amount: {unique: true, on_fail: fail}\n")
    store = FeatureStore(project)
    store.apply()
    store.materialize(end=END)
    with pytest.raises(PushExpectationError) as caught:
        store.push("transactions", [good(), good(code="B-2"), good(amount=6.0)])
    assert (caught.value.details["row"], caught.value.details["rule"]) == (1, "unique")
    assert store.push("transactions", [good(), good(amount=6.0)]).rows == 2
