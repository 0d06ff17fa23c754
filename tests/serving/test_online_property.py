"""The online promise (DESIGN §4.5) on random data: after `materialize(end=T)`, a lookup
at any t >= T equals the reference semantics over the events before T.

Random events come from the shared strategies, some of them after T (the materialization
must leave those out); lookups cover every result type, an integer and a string entity
key, and entities never seen. Runs against Redis and the local store.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore
from tests import strategies as s
from tests.offline.training_project import (
    MERCHANTS,
    REGISTRY,
    UNSEEN_MERCHANT,
    EventTuple,
    reference_values,
    write_events,
)
from tests.offline.training_project import at as utc_time
from tests.serving.conftest import module_online_setting
from tests.strategies import DAY

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
UNSEEN_USER = 99


@pytest.fixture(scope="module", params=["redis", "local"])
def project(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, FeatureStore]]:
    setting = module_online_setting(request)
    folder = tmp_path_factory.mktemp(f"online-{request.param}")
    (folder / "registry.yaml").write_text(REGISTRY.replace(
        "entities:", f"store:\n  online: {setting}\nentities:", 1))
    write_events(folder, [])
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FEATURESTORE_ONLINE", raising=False)
        patch.delenv("FEATURESTORE_OFFLINE", raising=False)
        store = FeatureStore(folder)
    store.apply()
    yield folder, store
    store.close()


def comparable(value: object) -> object:
    """Online values in the oracle's terms: times as microseconds, booleans as 0/1."""
    if isinstance(value, dt.datetime):
        return (value - _EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(value, bool):
        return int(value)
    return value


def agrees(online: object, expected: object) -> bool:
    online, expected = comparable(online), comparable(expected)
    if online is None or expected is None:
        return online is None and expected is None
    if isinstance(expected, str) or isinstance(online, str):
        return online == expected
    return math.isclose(float(online), float(expected), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]


@given(events=s.events, end=s.times,
       offsets=st.lists(st.integers(0, 3 * DAY), min_size=1, max_size=3))
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_lookups_equal_the_reference_over_events_before_the_end(
        project: tuple[Path, FeatureStore], events: list[EventTuple], end: int,
        offsets: list[int]) -> None:
    folder, store = project
    write_events(folder, events)
    store.materialize(end=utc_time(end), full=True)
    before_end = [event for event in events if event[1] < end]
    users = sorted({user for user, _, _ in events} | {UNSEEN_USER})
    merchants = [*MERCHANTS, UNSEEN_MERCHANT]
    user_features = list(store.registry.feature_views["user_stats"].features)
    merchant_features = list(store.registry.feature_views["merchant_stats"].features)
    for offset in offsets:
        at = end + offset
        by_user = store.get_online_features(
            features=[f"user_stats:{name}" for name in user_features],
            entities={"user_id": users}, at=utc_time(at))
        for row, user in enumerate(users):
            expected = reference_values(store, "user_stats", "user_id", before_end, user, at)
            for name in user_features:
                got = by_user[name][row]
                assert agrees(got, expected[name]), (name, user, at, got, expected[name])
        by_merchant = store.get_online_features(
            features=[f"merchant_stats:{name}" for name in merchant_features],
            entities={"merchant": merchants}, at=utc_time(at))
        for row, merchant in enumerate(merchants):
            expected = reference_values(store, "merchant_stats", "merchant", before_end,
                                        merchant, at)
            for name in merchant_features:
                got = by_merchant[name][row]
                assert agrees(got, expected[name]), (name, merchant, at, got, expected[name])
