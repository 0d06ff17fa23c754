"""Online lookups through the SDK, on Redis and on the local store, after a materialize."""

from __future__ import annotations

import math
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from featurestore import FeatureStore, FeatureStoreWarning, InputError
from featurestore.serving.errors import NotMaterializedError, RegistryMismatchError, RequestError
from featurestore.serving.inputs import MAX_ENTITIES
from tests.conftest import RedisServer
from tests.serving.conftest import ALL_FEATURES, DEMO_END, make_demo_store

UNSEEN = 10_000_000
USERS = [1, 2, 3, 7, UNSEEN]
AMOUNTS = [10.0, 250.0, None, 3_000.0, 42.0]


def same(online: object, offline: object) -> bool:
    """Equal, nulls alike, floats to a relative 1e-9 (DESIGN §4.5)."""
    if offline is None or (isinstance(offline, float) and math.isnan(offline)):
        return online is None
    if isinstance(offline, float) and isinstance(online, float):
        return math.isclose(online, offline, rel_tol=1e-9, abs_tol=0.0)
    return online == offline and type(online) is type(offline)


@pytest.mark.parametrize("after", [timedelta(0), timedelta(minutes=7), timedelta(hours=30),
                                   timedelta(days=8)])
def test_lookup_equals_the_training_set(shared_store: FeatureStore, after: timedelta) -> None:
    at = DEMO_END + after
    online = shared_store.get_online_features(
        features=ALL_FEATURES, entities={"user_id": USERS}, request={"amount_now": AMOUNTS},
        at=at)
    spine = pd.DataFrame({"user_id": USERS, "event_ts": [at] * len(USERS),
                          "amount_now": AMOUNTS})
    offline = shared_store.get_training_set(spine, features=ALL_FEATURES, output="arrow")
    expected = offline.drop_columns(["event_ts", "amount_now"]).to_pydict()
    assert list(online) == list(expected)
    for column, values in expected.items():
        for row, (got, want) in enumerate(zip(online[column], values, strict=True)):
            assert same(got, want), (column, USERS[row], got, want)


def test_output_columns_types_and_unseen_entities(shared_store: FeatureStore) -> None:
    out = shared_store.get_online_features(
        features=["user_txn:last_category", "txn_context:amount_z", "user_txn:txn_count_1h",
                  "user_txn:amount_sum_7d", "user_txn:amount_mean_30d"],
        entities={"user_id": [1, UNSEEN]}, request={"amount_now": [5.0, 5.0]},
        at=DEMO_END)
    assert list(out) == ["user_id", "last_category", "amount_z", "txn_count_1h",
                         "amount_sum_7d", "amount_mean_30d"]
    assert out["user_id"] == [1, UNSEEN]
    assert isinstance(out["last_category"][0], str)
    assert isinstance(out["txn_count_1h"][0], int)
    assert isinstance(out["amount_sum_7d"][0], float) and out["amount_sum_7d"][0] > 0
    # Never seen: an empty window (DESIGN §4.3), not an error.
    assert [out[name][1] for name in list(out)[1:]] == [None, None, 0, 0.0, None]


def test_full_names_and_services(shared_store: FeatureStore) -> None:
    out = shared_store.get_online_features(
        service="fraud_v1", entities={"user_id": [1]}, request={"amount_now": [5.0]},
        at=DEMO_END, full_names=True)
    assert list(out) == ["user_id", "user_txn__amount_sum_7d", "user_txn__txn_count_1h",
                         "txn_context__amount_z", "user_txn__last_category"]
    bare = shared_store.get_online_features(
        service="fraud_v1", entities={"user_id": [1]}, request={"amount_now": [5.0]},
        at=DEMO_END)
    assert list(bare.values())[1:] == list(out.values())[1:]


def test_every_way_of_giving_the_time_agrees(shared_store: FeatureStore) -> None:
    at = DEMO_END + timedelta(hours=5, minutes=3)
    forms = [at, at.replace(tzinfo=None), at.astimezone(timezone(timedelta(hours=-5))),
             at.isoformat(), at.strftime("%Y-%m-%dT%H:%M:%SZ"), at.strftime("%Y-%m-%dT%H:%M"),
             pd.Timestamp(at)]
    answers = [shared_store.get_online_features(
        features=["user_txn:amount_sum_7d", "user_txn:txn_count_1h"],
        entities={"user_id": [1, 2, 3]}, at=form) for form in forms]
    assert all(answer == answers[0] for answer in answers)


def test_default_time_is_now(shared_store: FeatureStore) -> None:
    # Now is years after the sample data: every window is empty again, and it says so.
    with pytest.warns(FeatureStoreWarning, match="windowed features are empty"):
        out = shared_store.get_online_features(
            features=["user_txn:txn_count_1h", "user_txn:amount_max_1d"],
            entities={"user_id": [1]})
    assert out == {"user_id": [1], "txn_count_1h": [0], "amount_max_1d": [None]}


def test_a_request_feature_needs_only_what_it_reads(shared_store: FeatureStore) -> None:
    # log_amount_now reads only its request field, though amount_z in the same view
    # reads user_txn: no entity is asked for. One given anyway (a client sending the
    # same entities whatever it asks) is ignored; a name no entity has is refused.
    out = shared_store.get_online_features(features=["txn_context:log_amount_now"],
                                           request={"amount_now": [0.0, math.e - 1, None]})
    assert out == {"log_amount_now": [0.0, 1.0, None]}
    assert shared_store.get_online_features(
        features=["txn_context:log_amount_now"], entities={"user_id": [1]},
        request={"amount_now": [0.0]}) == {"log_amount_now": [0.0]}
    with pytest.raises(RequestError) as caught:
        shared_store.get_online_features(features=["txn_context:log_amount_now"],
                                         entities={"usr_id": [1]}, request={"amount_now": [1.0]})
    assert caught.value.code == "unknown_entity_key"
    # Likewise a request field the selection does not read.
    assert shared_store.get_online_features(
        features=["user_txn:txn_count_1h"], entities={"user_id": [999_999]},
        request={"amount_now": [1.0]}, at=DEMO_END) == {"user_id": [999_999], "txn_count_1h": [0]}
    # amount_z reads user_txn: it still needs the user.
    with pytest.raises(RequestError) as caught:
        shared_store.get_online_features(features=["txn_context:amount_z"],
                                         request={"amount_now": [1.0]})
    assert caught.value.code == "missing_entity_key"
    both = shared_store.get_online_features(
        features=["txn_context:log_amount_now", "txn_context:amount_z"],
        entities={"user_id": [1, 2]}, request={"amount_now": [0.0, 5.0]}, at=DEMO_END)
    alone = shared_store.get_online_features(
        features=["txn_context:amount_z"], entities={"user_id": [1, 2]},
        request={"amount_now": [0.0, 5.0]}, at=DEMO_END)
    assert both["amount_z"] == alone["amount_z"] and None not in alone["amount_z"]


def test_keys_may_come_as_numpy_or_pandas(shared_store: FeatureStore) -> None:
    lists = shared_store.get_online_features(
        features=["user_txn:amount_sum_7d"], entities={"user_id": [1, 2]}, at=DEMO_END)
    series = shared_store.get_online_features(
        features=["user_txn:amount_sum_7d"], entities={"user_id": pd.Series([1, 2])},
        at=DEMO_END)
    assert lists == series


_ONE = {"user_id": [1]}
_FIELDS = {"amount_now": [1.0]}
BAD_LOOKUPS = [
    ({"service": "fraud_v1", "features": ["user_txn:txn_count_1h"], "entities": _ONE},
     "invalid_features"),
    ({"entities": _ONE}, "invalid_features"),
    ({"features": [], "entities": _ONE}, "invalid_features"),
    ({"features": "user_txn", "entities": _ONE}, "unknown_feature"),
    ({"features": ["user_txn:txn_count"], "entities": _ONE}, "unknown_feature"),
    ({"features": ["nope:txn_count_1h"], "entities": _ONE}, "unknown_feature"),
    ({"service": "fraud_v2", "entities": _ONE}, "unknown_feature"),
    ({"features": [3], "entities": _ONE}, "invalid_features"),
    ({"service": "fraud_v1", "entities": {}, "request": _FIELDS}, "missing_entity_key"),
    ({"service": "fraud_v1", "entities": {"user_id": [1], "merchant": ["m"]},
      "request": _FIELDS}, "unknown_entity_key"),
    ({"service": "fraud_v1", "entities": {"user_id": ["1"]}, "request": _FIELDS},
     "wrong_type"),
    ({"service": "fraud_v1", "entities": {"user_id": [True]}, "request": _FIELDS},
     "wrong_type"),
    ({"service": "fraud_v1", "entities": {"user_id": [1.5]}, "request": _FIELDS},
     "wrong_type"),
    ({"service": "fraud_v1", "entities": {"user_id": 1}, "request": _FIELDS},
     "invalid_entities"),
    ({"service": "fraud_v1", "entities": [1], "request": _FIELDS}, "invalid_entities"),
    ({"service": "fraud_v1", "entities": {"user_id": [1, 2]}, "request": _FIELDS},
     "length_mismatch"),
    ({"service": "fraud_v1", "entities": {"user_id": list(range(MAX_ENTITIES + 1))},
      "request": {"amount_now": [1.0] * (MAX_ENTITIES + 1)}}, "too_many_entities"),
    ({"service": "fraud_v1", "entities": _ONE}, "missing_request_field"),
    ({"service": "fraud_v1", "entities": _ONE, "request": {"amount_now": [1.0], "x": [1]}},
     "unknown_request_field"),
    ({"features": ["user_txn:txn_count_1h"], "entities": _ONE, "request": {"amount_nw": [1]}},
     "unknown_request_field"),
    ({"service": "fraud_v1", "entities": _ONE, "request": {"amount_now": ["10"]}},
     "wrong_type"),
    ({"service": "fraud_v1", "entities": _ONE, "request": {"amount_now": [True]}},
     "wrong_type"),
    ({"service": "fraud_v1", "entities": _ONE, "request": _FIELDS, "at": "yesterday"},
     "invalid_time"),
    ({"service": "fraud_v1", "entities": _ONE, "request": _FIELDS, "at": 1.5},
     "invalid_time"),
    # Readable more than one way: refused rather than guessed at.
    *(({"service": "fraud_v1", "entities": _ONE, "request": _FIELDS, "at": at},
       "invalid_time") for at in (
        1_706_659_200_000_000, True, "today", "now", "05/04/2024", "2024-1-31",
        DEMO_END.date(), np.datetime64("2024-01-31T00:00:00"), pd.NaT)),
    ({"service": "fraud_v1", "entities": _ONE, "request": _FIELDS,
      "at": DEMO_END - timedelta(microseconds=1)}, "time_before_materialization"),
]


@pytest.mark.parametrize(("arguments", "code"), BAD_LOOKUPS)
def test_bad_lookups_raise_a_coded_input_error(shared_store: FeatureStore, arguments: dict,
                                               code: str) -> None:
    with pytest.raises(RequestError) as caught:
        shared_store.get_online_features(**{"at": DEMO_END, **arguments})
    assert caught.value.code == code
    assert isinstance(caught.value, InputError)


def test_nothing_materialized_is_a_clear_error(online_backend: object, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", online_backend.setting,  # type: ignore[attr-defined]
                            materialize=False)
    with pytest.raises(NotMaterializedError, match="run `featurestore materialize`"):
        store.get_online_features(service="fraud_v1", entities={"user_id": [1]},
                                  request={"amount_now": [1.0]})


def test_states_of_other_definitions_are_refused(demo_store: FeatureStore) -> None:
    # What other definitions of the view leave behind: states with another state key.
    assert demo_store.online_store().write_metadata("state:user_txn", b"0123456789abcdef0123")
    arguments = {"features": ["user_txn:txn_count_1h"], "entities": {"user_id": [1]},
                 "at": DEMO_END}
    with pytest.raises(RegistryMismatchError, match=r"feature view 'user_txn' were built by "
                                                    r"other definitions of it \(state "
                                                    "0123456789abcdef0123.*run `featurestore "
                                                    "materialize`"):
        demo_store.get_online_features(**arguments)
    demo_store.materialize(end=DEMO_END)
    assert demo_store.get_online_features(**arguments)["user_id"] == [1]


def test_a_lookup_is_one_redis_round_trip(clean_redis: RedisServer, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    users = list(range(1, 101))
    arguments = {"features": ALL_FEATURES, "entities": {"user_id": users},
                 "request": {"amount_now": [1.0] * len(users)}, "at": DEMO_END}
    store.get_online_features(**arguments)  # the client learns the published version
    with redis.Redis.from_url(clean_redis.url) as client:
        client.config_resetstat()
        store.get_online_features(**arguments)
        stats = client.info("commandstats")
    # CONFIG RESETSTAT counts itself; INFO is counted only after it answers.
    calls = {name: value["calls"] for name, value in stats.items()}
    assert calls == {"cmdstat_config|resetstat": 1, "cmdstat_mget": 1}
    store.close()


def test_a_time_before_an_entity_s_pushed_event_is_refused(demo_store: FeatureStore) -> None:
    # The pushed event is folded into user 1's state at once: a lookup before its time
    # would count it, where the training set at that time would not.
    pushed_at = DEMO_END + timedelta(minutes=1)
    demo_store.push("transactions", [{"user_id": 1, "event_ts": pushed_at, "amount": 950.0,
                                      "merchant_category": "travel"}])
    arguments = {"features": ["user_txn:txn_count_1h"], "entities": {"user_id": [2, 1]}}
    for at in (DEMO_END, pushed_at):
        with pytest.raises(RequestError, match=r"not after the newest event of entity 1 in "
                                               r"'user_txn' \(2024-") as raised:
            demo_store.get_online_features(**arguments, at=at)
        assert raised.value.code == "time_before_newest_event"
    # User 2 has no later event; after the pushed one, both answer as the training set does.
    assert demo_store.get_online_features(features=arguments["features"],
                                          entities={"user_id": [2]}, at=DEMO_END)["user_id"] == [2]
    later = pushed_at + timedelta(microseconds=1)
    online = demo_store.get_online_features(**arguments, at=later)
    spine = pd.DataFrame({"user_id": [2, 1], "event_ts": [later, later]})
    offline = demo_store.get_training_set(spine, features=arguments["features"], output="arrow")
    assert online["txn_count_1h"] == offline.column("txn_count_1h").to_pylist()
