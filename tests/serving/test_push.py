"""Push: durable segments first, then atomic updates of the online states."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis

from featurestore import FeatureStore, OnlineStoreUnavailable
from featurestore.offline.segments import list_segments, segment_dir
from featurestore.serving.errors import NotMaterializedError, RequestError
from tests.conftest import RedisServer
from tests.serving.conftest import ALL_FEATURES, DEMO_END, make_demo_store
from tests.serving.test_lookup import same

PUSHED_AT = DEMO_END + timedelta(minutes=3)
LOOKUP_AT = DEMO_END + timedelta(minutes=30)
COUNTS = ["user_txn:txn_count_1h", "user_txn:amount_sum_7d", "user_txn:big_txn_7d",
          "user_txn:last_category"]


def event(user: int, minutes: float, amount: float | None = 10.0,
          category: str | None = "grocery") -> dict:
    """One transaction `minutes` after the demo's materialization end."""
    return {"user_id": user, "event_ts": DEMO_END + timedelta(minutes=minutes),
            "amount": amount, "merchant_category": category}


def pushed_rows(store: FeatureStore) -> int:
    """Rows in the durable segments of the transactions source."""
    folder = segment_dir(store.offline_path.parent, "transactions")
    return sum(pq.read_metadata(path).num_rows for path in list_segments(folder))


def lookup(store: FeatureStore, users: list[int], features: list[str] = COUNTS) -> dict:
    return store.get_online_features(features=features, entities={"user_id": users},
                                     at=LOOKUP_AT)


def test_a_push_reaches_the_next_lookup(demo_store: FeatureStore) -> None:
    before = lookup(demo_store, [1, 2])
    result = demo_store.push("transactions", [event(1, 3, 600.0, "crypto"),
                                              event(1, 4, None, None), event(2, 5, 1.5)])
    assert (result.rows, result.online, result.entities) == (3, True, 2)
    assert result.segment is not None and result.segment.exists()
    after = lookup(demo_store, [1, 2])
    assert after["txn_count_1h"] == [before["txn_count_1h"][0] + 2,
                                     before["txn_count_1h"][1] + 1]
    assert after["amount_sum_7d"][0] == pytest.approx(before["amount_sum_7d"][0] + 600.0)
    assert after["big_txn_7d"] == [before["big_txn_7d"][0] + 1, before["big_txn_7d"][1]]
    # A category no materialization has seen: the dictionary grows in the same update.
    assert after["last_category"] == ["crypto", "grocery"]


def test_pushed_state_equals_the_training_set_over_all_events(demo_store: FeatureStore) -> None:
    users = [1, 2, 3]
    demo_store.push("transactions", pd.DataFrame([event(u, m, 20.0 * m, c) for u, m, c in [
        (1, 1, "fuel"), (1, 2, None), (2, 2, "travel"), (3, 9, "grocery"), (1, 9, "x")]]))
    amounts = [5.0, 50.0, 500.0]
    online = demo_store.get_online_features(features=ALL_FEATURES, entities={"user_id": users},
                                            request={"amount_now": amounts}, at=LOOKUP_AT)
    spine = pd.DataFrame({"user_id": users, "event_ts": [LOOKUP_AT] * 3, "amount_now": amounts})
    offline = demo_store.get_training_set(spine, features=ALL_FEATURES, output="arrow")
    for column, values in offline.drop_columns(["event_ts", "amount_now"]).to_pydict().items():
        assert all(same(got, want) for got, want in zip(online[column], values, strict=True)), \
            (column, online[column], values)


def test_pushes_after_the_end_survive_a_new_materialization(demo_store: FeatureStore) -> None:
    # A push folds its events into the online states; a materialization with an end before
    # them publishes states without them, unless it folds them in again.
    demo_store.push("transactions", [event(1, 1, 700.0, "spaceflight"), event(2, 2, 3.0),
                                     event(777_777, 4, 12.0, "fuel")])
    users = [1, 2, 3, 777_777]
    before = lookup(demo_store, users)
    demo_store.materialize(end=DEMO_END)
    again = lookup(demo_store, users)
    assert again == before
    assert again["last_category"] == ["spaceflight", "grocery", again["last_category"][2],
                                      "fuel"]
    spine = pd.DataFrame({"user_id": users, "event_ts": [LOOKUP_AT] * len(users)})
    offline = demo_store.get_training_set(spine, features=COUNTS, output="arrow").to_pydict()
    for column in ("txn_count_1h", "amount_sum_7d", "big_txn_7d", "last_category"):
        assert all(same(got, want) for got, want in
                   zip(again[column], offline[column], strict=True)), column
    # A later end folds them into the stored states instead, once.
    demo_store.materialize(end=DEMO_END + timedelta(minutes=10))
    assert lookup(demo_store, users) == before


@pytest.mark.parametrize(("source", "rows", "code"), [
    ("transaction", [event(1, 1)], "unknown_source"),
    ("transactions", [{**event(1, 1), "user_id": "1"}], "invalid_rows"),
    ("transactions", [{**event(1, 1), "amount": "ten"}], "invalid_rows"),
    ("transactions", [{"event_ts": PUSHED_AT, "amount": 1.0}], "invalid_rows"),
    ("transactions", [{**event(1, 1), "user_id": None}], "invalid_rows"),
    ("transactions", [{**event(1, 1), "colour": "red"}], "invalid_rows"),
    ("transactions", "not rows", "invalid_rows"),
    ("transactions", {"user_id": 1, "event_ts": PUSHED_AT}, "invalid_rows"),
])
def test_bad_pushes_store_nothing(shared_store: FeatureStore, source: str, rows: object,
                                  code: str) -> None:
    with pytest.raises(RequestError) as caught:
        shared_store.push(source, rows)
    assert caught.value.code == code
    assert pushed_rows(shared_store) == 0


def test_an_empty_push_is_a_no_op(shared_store: FeatureStore) -> None:
    result = shared_store.push("transactions", [])
    assert (result.rows, result.segment, result.online) == (0, None, False)
    assert pushed_rows(shared_store) == 0


def test_a_push_before_any_materialization_waits_for_it(online_backend: object,
                                                        tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", online_backend.setting,  # type: ignore[attr-defined]
                            materialize=False)
    result = store.push("transactions", [event(1, 1, 700.0)])
    assert (result.rows, result.online) == (1, False)
    store.materialize(end=DEMO_END + timedelta(hours=1))
    out = store.get_online_features(features=["user_txn:big_txn_7d"], entities={"user_id": [1]},
                                    at=DEMO_END + timedelta(hours=1))
    spine = pd.DataFrame({"user_id": [1], "event_ts": [DEMO_END + timedelta(hours=1)]})
    expected = store.get_training_set(spine, features=["user_txn:big_txn_7d"])
    assert out["big_txn_7d"] == [int(expected["big_txn_7d"][0])] and out["big_txn_7d"][0] >= 1
    store.close()


def test_pushes_survive_a_redis_restart(clean_redis: RedisServer, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    before = lookup(store, [5])
    store.push("transactions", [event(5, 1, 900.0), event(5, 2, 100.0)])
    clean_redis.stop()
    try:
        with pytest.raises(OnlineStoreUnavailable):
            lookup(store, [5])
        # Refused before anything is stored, so the caller may simply retry.
        with pytest.raises(OnlineStoreUnavailable):
            store.push("transactions", [event(5, 3)])
        assert pushed_rows(store) == 2
    finally:
        clean_redis.start()  # empty: Redis is a cache, not the record
    with pytest.raises(NotMaterializedError):
        lookup(store, [5])
    late = store.push("transactions", [event(5, 4, 50.0)])
    assert late.online is False and pushed_rows(store) == 3
    store.materialize(end=LOOKUP_AT)
    after = lookup(store, [5])
    assert after["txn_count_1h"] == [before["txn_count_1h"][0] + 3]
    assert after["amount_sum_7d"][0] == pytest.approx(before["amount_sum_7d"][0] + 1_050.0)
    store.close()


def test_concurrent_pushes_for_one_entity_lose_nothing(demo_store: FeatureStore) -> None:
    writers, pushes = 4, 15
    before = lookup(demo_store, [9])
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        # Each writer has its own store object: its own connections, like a process.
        store = FeatureStore(demo_store.registry_path)
        try:
            start.wait()
            for k in range(pushes):
                store.push("transactions", [event(9, 1 + (writer * pushes + k) / 100, 1.0)])
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    after = lookup(demo_store, [9])
    assert after["txn_count_1h"] == [before["txn_count_1h"][0] + writers * pushes]
    assert after["amount_sum_7d"][0] == pytest.approx(
        before["amount_sum_7d"][0] + writers * pushes)


def test_a_push_stored_but_refused_online_says_not_to_retry(clean_redis: RedisServer,
                                                            tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    with redis.Redis.from_url(clean_redis.url) as admin:
        # Reads still work, every write fails: Redis out of memory after the check.
        admin.config_set("maxmemory", 1)
        try:
            with pytest.raises(OnlineStoreUnavailable, match="do not push them again"):
                store.push("transactions", [event(6, 1)])
        finally:
            admin.config_set("maxmemory", 0)
    assert pushed_rows(store) == 1
    store.close()
