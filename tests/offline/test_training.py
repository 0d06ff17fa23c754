"""Training sets equal the reference semantics (DESIGN §4): property tests on random
events and spines, and a hand-written table of edge cases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore
from featurestore.errors import FeatureStoreWarning
from featurestore.offline import point_in_time
from tests import strategies as s
from tests.offline.training_project import (
    UNSEEN_MERCHANT,
    EventTuple,
    at,
    make_project,
    merchant_of,
    reference_values,
    row,
    same,
    spine_frame,
    write_events,
)
from tests.strategies import BASE, DAY, HOUR, MINUTE

USER_FEATURES = (
    "n_1h", "n_amount_1d", "sum_1h", "sum_3d", "mean_90m", "std_1d", "std_life", "min_7m",
    "max_3d", "first_cat_1d", "last_cat_1h", "last_amount_life", "qty_sum_1d", "qty_max_1d",
    "flag_last_1h", "latest_ts_1d", "big_1d",
)  # fmt: skip
# Feature sets drawn by the property test: with a lifetime feature every event is read;
# with windowed features only, events before the earliest window tail are not read.
FEATURE_SETS = (
    USER_FEATURES,
    tuple(name for name in USER_FEATURES if "life" not in name),
    ("min_7m", "last_cat_1h", "n_1h"),
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FeatureStore]:
    folder = tmp_path_factory.mktemp("training")
    store = make_project(folder)
    store.kernels()
    return folder, store


def _check_against_reference(store: FeatureStore, events: list[EventTuple],
                             frame: pd.DataFrame, queries: list[tuple[int, int]],
                             merchants: list[str], names: Sequence[str]) -> None:
    for i, (user, t) in enumerate(queries):
        expected = reference_values(store, "user_stats", "user_id", events, user, t)
        for name in names:
            got = frame[f"user_stats__{name}"].iloc[i]
            assert same(got, expected[name]), (name, user, t, got, expected[name])
        by_merchant = reference_values(store, "merchant_stats", "merchant", events,
                                       merchants[i], t)
        for name in ("n_1h", "amount_mean_1d"):
            got = frame[f"merchant_stats__{name}"].iloc[i]
            assert same(got, by_merchant[name]), (name, merchants[i], t, got)


def _spine_queries(data: st.DataObject, events: list[EventTuple]) -> list[tuple[int, int]]:
    """Random spine rows in random order, many of them at an event's time, 1 µs around
    it, or one window length after it (the event then sits on the window's tail)."""
    queries = data.draw(s.queries)
    if events:
        offsets = [0, 0, 1, -1, 7 * MINUTE, HOUR, HOUR + 1, 90 * MINUTE, DAY, 3 * DAY]
        near = st.tuples(st.sampled_from(events), st.sampled_from(offsets))
        picked = data.draw(st.lists(near, max_size=15))
        queries += [(user, ts + offset) for (user, ts, _), offset in picked]
        # Sometimes the spine starts late, at one of those times: events before the
        # earliest window tail are then not read, and the bound must be exact.
        if picked and data.draw(st.booleans()):
            start = data.draw(st.sampled_from([t for _, t in queries[-len(picked):]]))
            queries = [(user, t) for user, t in queries if t >= start]
    return data.draw(st.permutations(queries))


@settings(max_examples=40, deadline=None)
@given(
    events=s.events,
    data=st.data(),
    merchants=st.lists(st.sampled_from(["ma", "mb", "mc", UNSEEN_MERCHANT]), min_size=45,
                       max_size=45),
    rows_per_partition=st.sampled_from([point_in_time.ROWS_PER_PARTITION, 7]),
    # 0: read only the spine's entities' events, always; 10**12: never.
    rows_per_filtered_entity=st.sampled_from([0, 10**12]),
    names=st.sampled_from(FEATURE_SETS),
)
def test_training_set_matches_reference(project, events, data, merchants,
                                        rows_per_partition, rows_per_filtered_entity,
                                        names) -> None:
    folder, store = project
    write_events(folder, events)
    queries = _spine_queries(data, events)
    merchants = merchants[: len(queries)]
    features = [f"user_stats:{name}" for name in names]
    features += ["merchant_stats:n_1h", "merchant_stats:amount_mean_1d"]
    with pytest.MonkeyPatch.context() as patch:
        # Small partitions make several hash partitions out of a few events.
        patch.setattr(point_in_time, "ROWS_PER_PARTITION", rows_per_partition)
        patch.setattr(point_in_time, "ROWS_PER_FILTERED_ENTITY", rows_per_filtered_entity)
        frame = store.get_training_set(spine_frame(queries, merchants), features=features,
                                       full_names=True)
    assert frame["user_id"].tolist() == [user for user, _ in queries]
    assert frame["label"].tolist() == [i % 2 for i in range(len(queries))]
    _check_against_reference(store, events, frame, queries, merchants, names)


T0 = BASE + 10 * HOUR  # an hour boundary
EDGE_CASES = [
    # (case, events, query user, query time, feature, expected value)
    ("event at the spine time is excluded", [(1, T0, row(10.0))], 1, T0, "sum_1h", 0.0),
    ("event 1 µs before the spine time counts", [(1, T0 - 1, row(10.0))], 1, T0, "sum_1h",
     10.0),
    ("event exactly at the window tail is included", [(1, T0 - HOUR, row(10.0))], 1, T0,
     "sum_1h", 10.0),
    ("event 1 µs before the window tail is excluded", [(1, T0 - HOUR - 1, row(10.0))], 1, T0,
     "sum_1h", 0.0),
    ("the tail is hop-aligned: floor(t, 5m) - 1h", [(1, T0 - HOUR, row(10.0))], 1,
     T0 + 4 * MINUTE, "sum_1h", 10.0),
    ("past the next hop the tail moves", [(1, T0 - HOUR + 4 * MINUTE, row(10.0))], 1,
     T0 + 5 * MINUTE, "sum_1h", 0.0),
    ("a 1d window with 1h hops keeps the whole first hour",
     [(1, T0 - DAY, row(5.0)), (1, T0 - DAY + 59 * MINUTE, row(7.0))], 1,
     T0 + 59 * MINUTE, "n_amount_1d", 2),
    ("null amounts are skipped by the aggregation",
     [(1, T0 - 3, row(None)), (1, T0 - 2, row(4.0)), (1, T0 - 1, row(None))], 1, T0,
     "mean_90m", 4.0),
    ("a count of an expression skips nulls",
     [(1, T0 - 3, row(None)), (1, T0 - 2, row(4.0))], 1, T0, "n_amount_1d", 1),
    ("count of events counts null rows", [(1, T0 - 3, row(None))], 1, T0, "n_1h", 1),
    ("last skips a null value", [(1, T0 - 2, row(3.0)), (1, T0 - 1, row(None))], 1, T0,
     "last_amount_life", 3.0),
    ("empty window: count is 0", [(1, T0 - 2 * DAY, row(1.0))], 1, T0, "n_1h", 0),
    ("empty window: sum is 0", [(1, T0 - 2 * DAY, row(1.0))], 1, T0, "sum_1h", 0.0),
    ("empty window: integer sum is 0", [(1, T0 - 2 * DAY, row(qty=3))], 1, T0,
     "qty_sum_1d", 0),
    ("empty window: mean is null", [(1, T0 - 2 * DAY, row(1.0))], 1, T0, "mean_90m", None),
    ("empty window: max is null", [(1, T0 - 5 * DAY, row(1.0))], 1, T0, "max_3d", None),
    ("empty window: last is null", [(1, T0 - 2 * DAY, row(category="a"))], 1, T0,
     "last_cat_1h", None),
    ("unseen entity: count is 0", [(1, T0 - 1, row(1.0))], 9, T0, "n_1h", 0),
    ("unseen entity: mean is null", [(1, T0 - 1, row(1.0))], 9, T0, "mean_90m", None),
    ("unseen entity: lifetime std is null", [(1, T0 - 1, row(1.0))], 9, T0, "std_life", None),
    ("equal times: last takes the largest string",
     [(1, T0 - 1, row(category="b")), (1, T0 - 1, row(category="a"))], 1, T0, "last_cat_1h",
     "b"),
    ("equal times: first takes the smallest string",
     [(1, T0 - 1, row(category="b")), (1, T0 - 1, row(category="a"))], 1, T0,
     "first_cat_1d", "a"),
    ("a later string wins over a larger one",
     [(1, T0 - 2, row(category="z")), (1, T0 - 1, row(category="a"))], 1, T0, "last_cat_1h",
     "a"),
    ("integer max over a window", [(1, T0 - 2, row(qty=4)), (1, T0 - 1, row(qty=-2))], 1, T0,
     "qty_max_1d", 4),
    ("integer max with no values is null", [(1, T0 - 1, row(1.0))], 1, T0, "qty_max_1d",
     None),
    ("boolean last", [(1, T0 - 2, row(flag=True)), (1, T0 - 1, row(flag=False))], 1, T0,
     "flag_last_1h", False),
    ("a comparison summed", [(1, T0 - 2, row(60.0)), (1, T0 - 1, row(40.0))], 1, T0,
     "big_1d", 1),
    ("std of one value is 0", [(1, T0 - 1, row(3.0))], 1, T0, "std_1d", 0.0),
]  # fmt: skip


@pytest.mark.parametrize(("events", "user", "t", "feature", "expected"),
                         [case[1:] for case in EDGE_CASES], ids=[case[0] for case in EDGE_CASES])
def test_edge_cases(project, events, user, t, feature, expected) -> None:
    folder, store = project
    write_events(folder, events)
    # A later row of another user, so that the spine's latest time (which bounds the
    # events read) is not what keeps later events out.
    spine = spine_frame([(user, t), (98, t + 2 * DAY)])
    frame = store.get_training_set(spine, features=[f"user_stats:{feature}"])
    got = frame[feature].iloc[0]
    assert same(got, expected), (got, expected)
    # The oracle agrees with the table, so the table itself is checked too.
    assert same(reference_values(store, "user_stats", "user_id", events, user, t)[feature],
                expected)


def test_naive_and_tz_aware_spine_times_mean_the_same_instant(project) -> None:
    folder, store = project
    events = [(1, T0 - HOUR, row(1.0)), (1, T0 - 1, row(2.0)), (1, T0, row(4.0))]
    write_events(folder, events)
    naive = spine_frame([(1, T0), (1, T0 + 1)])
    aware = naive.assign(event_ts=naive["event_ts"].dt.tz_localize("UTC")
                         .dt.tz_convert("Europe/Paris"))
    text = naive.assign(event_ts=aware["event_ts"].map(lambda t: t.isoformat()))
    results = [
        store.get_training_set(spine, features=["user_stats:sum_1h"])["sum_1h"].tolist()
        for spine in (naive, aware, text)
    ]
    assert results == [[3.0, 7.0]] * 3


def test_rows_with_null_keys_get_an_unseen_entitys_features(project) -> None:
    folder, store = project
    events = [(1, T0 - 2 * MINUTE, row(2.0, category="a")), (2, T0 - MINUTE, row(5.0))]
    write_events(folder, events)
    merchant = merchant_of(T0 - MINUTE)
    spine = pd.DataFrame({
        "user_id": pd.array([2, None, 1, None, None], dtype="Int64"),
        "merchant": [merchant, merchant, None, None, merchant],
        "event_ts": pd.to_datetime([at(T0)] * 5).as_unit("us"),
        "amount_now": [1.0, 2.0, 3.0, 4.0, 5.0],
    })
    features = ["user_stats:n_1h", "user_stats:sum_1h", "user_stats:mean_90m",
                "user_stats:last_cat_1h", "merchant_stats:n_1h", "ctx:ratio", "ctx:double_now"]
    with pytest.warns(FeatureStoreWarning) as caught:
        frame = store.get_training_set(spine, features=features, full_names=True)
    assert sorted(str(warning.message) for warning in caught) == [
        "2 spine rows have a null merchant: they get the features of an unseen entity",
        "3 spine rows have a null user_id: they get the features of an unseen entity",
    ]
    # Rows keep their order; a null user key gives the user features of an unseen user
    # (count and sum 0, the others null) but keeps its merchant's features.
    assert frame["user_stats__n_1h"].tolist() == [1, 0, 1, 0, 0]
    assert frame["user_stats__sum_1h"].tolist() == [5.0, 0.0, 2.0, 0.0, 0.0]
    assert frame["user_stats__mean_90m"].isna().tolist() == [False, True, False, True, True]
    assert frame["user_stats__last_cat_1h"].tolist()[2] == "a"
    assert frame["user_stats__last_cat_1h"].isna().tolist() == [True, True, False, True, True]
    seen = sum(merchant_of(ts) == merchant for _, ts, _ in events)
    assert frame["merchant_stats__n_1h"].tolist() == [seen, seen, 0, 0, seen]
    # Request features still compute: from the unseen entity's (null) mean, and alone.
    assert frame["ctx__ratio"].isna().tolist() == [False, True, False, True, True]
    assert frame["ctx__double_now"].tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    # A float key column (pandas' int with NaN) and a plain string spine agree.
    floats = spine.assign(user_id=spine["user_id"].astype("float64"))
    with pytest.warns(FeatureStoreWarning):
        again = store.get_training_set(floats, features=features, full_names=True)
    pd.testing.assert_frame_equal(again.drop(columns="user_id"), frame.drop(columns="user_id"))
