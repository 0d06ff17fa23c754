"""Property tests: compiled kernels against the reference semantics (tests/reference.py).

One registry exercising every aggregation, several windows and hops, lifetime features,
nulls and strings is compiled once; hypothesis draws events and query times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import strategies as s
from tests.reference import Event, feature_value
from transforms import compile_graph
from transforms.spec import ColumnType, FeatureSpec, GraphSpec, ViewSpec

M, H, D = s.MINUTE, s.HOUR, s.DAY

FEATURES = (
    FeatureSpec("n_1h", "count", None, H, 5 * M),
    FeatureSpec("n_amount_1d", "count", "amount", D, H),
    FeatureSpec("sum_1h", "sum", "amount", H, 5 * M),
    FeatureSpec("sum_3d", "sum", "amount", 3 * D, H),
    FeatureSpec("mean_90m", "mean", "amount", 90 * M, 30 * M),
    FeatureSpec("std_1d", "std", "amount", D, H),
    FeatureSpec("std_life", "std", "amount", None, None),
    FeatureSpec("min_7m", "min", "amount", 7 * M, M),
    FeatureSpec("max_3d", "max", "amount", 3 * D, H),
    FeatureSpec("first_cat_1d", "first", "category", D, H),
    FeatureSpec("last_cat_1h", "last", "category", H, 5 * M),
    FeatureSpec("last_amount_life", "last", "amount", None, None),
    FeatureSpec("first_amount_90m", "first", "amount", 90 * M, 30 * M),
    FeatureSpec("big_1d", "sum", "amount > 50", D, H),
    FeatureSpec("log_1h", "sum", "log1p(amount)", H, 5 * M),
    FeatureSpec("qty_mean_life", "mean", "qty", None, None),
    FeatureSpec("flag_max_1h", "max", "flag", H, 5 * M),
    FeatureSpec("grocery_3d", "count", "where(category == 'grocery', 1, None)", 3 * D, H),
    FeatureSpec("hour_sum_1d", "sum", "hour(event_ts)", D, H),
    FeatureSpec("decay_life", "decayed_sum", "amount", None, None, half_life_us=H),
    FeatureSpec("decay_1d", "decayed_sum", "amount", D, H, half_life_us=6 * H),
    FeatureSpec("decay_n_1h", "decayed_count", None, H, 5 * M, half_life_us=10 * M),
    FeatureSpec("decay_qty_3d", "decayed_count", "qty", 3 * D, H, half_life_us=D),
    FeatureSpec("last3_amount_life", "last_n", "amount", None, None, n=3),
    FeatureSpec("last2_cat_1h", "last_n", "category", H, 5 * M, n=2),
    FeatureSpec("first2_amount_90m", "first_n", "amount", 90 * M, 30 * M, n=2),
    FeatureSpec("first3_cat_life", "first_n", "category", None, None, n=3),
    FeatureSpec("first2_qty_1d", "first_n", "qty", D, H, n=2),
    FeatureSpec("top2_cat_1d", "top_k", "category", D, H, k=2),
    FeatureSpec("top3_cat_life", "top_k", "category", None, None, k=3),
    FeatureSpec("distinct_cat_life", "approx_count_distinct", "category", None, None),
    # Precision 8 is exact up to 16 distinct values: busier windows reach HyperLogLog.
    FeatureSpec("distinct_amount_1d", "approx_count_distinct", "amount", D, H, precision=8),
    # Quantiles out of order and repeated: one walk over the bins answers them all.
    FeatureSpec("pct_amount_life", "approx_percentile", "amount", None, None,
                q=(0.9, 0.0, 1.0, 0.5, 0.9)),
    FeatureSpec("pct_amount_90m", "approx_percentile", "amount", 90 * M, 30 * M,
                q=(0.0, 0.5, 0.9, 1.0)),
    FeatureSpec("pct_qty_1h", "approx_percentile", "qty", H, 5 * M, q=(0.25,)),
)
SCHEMA = (
    ("amount", ColumnType.FLOAT), ("qty", ColumnType.INT), ("category", ColumnType.STRING),
    ("flag", ColumnType.BOOL), ("event_ts", ColumnType.TIMESTAMP), ("user", ColumnType.INT),
)
VIEW = ViewSpec("v", "src", ("user",), "event_ts", FEATURES)


@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory):
    spec = GraphSpec(views=(VIEW,), request_views=(), schemas=(("src", SCHEMA),))
    return compile_graph(spec, tmp_path_factory.mktemp("kernels")).views["v"]


def columns_of(events: Sequence[tuple[int, int, dict]], view,
               dictionary: list[str] | None = None) -> tuple[dict, dict]:
    """Kernel input columns (float64, NaN null, string codes) and dictionaries."""
    if dictionary is None:
        dictionary = sorted({row["category"] for _, _, row in events if row["category"]})
    code = {value: float(i) for i, value in enumerate(dictionary)}
    columns = {
        "amount": [np.nan if r["amount"] is None else r["amount"] for _, _, r in events],
        "qty": [np.nan if r["qty"] is None else float(r["qty"]) for _, _, r in events],
        "category": [code.get(r["category"], np.nan) for _, _, r in events],
        "flag": [float(r["flag"]) for _, _, r in events],
        "event_ts": [float(ts) for _, ts, _ in events],
    }
    used = {c: np.asarray(columns[c], dtype=np.float64) for c in view.input_columns}
    return used, {"category": dictionary}


def sort_events(events: list) -> list:
    return sorted(events, key=lambda e: (e[0], e[1], repr(sorted(e[2].items()))))


def training_inputs(view, events: list, queries: list) -> tuple[list, list, tuple]:
    """Events and queries sorted as the kernels take them, and the arguments of
    `training_values` for them (its fourth is the dictionaries)."""
    events = sort_events(events)
    queries = sorted(queries)
    columns, dictionaries = columns_of(events, view)
    arguments = ([e for e, _, _ in events], [t for _, t, _ in events], columns, dictionaries,
                 [e for e, _ in queries], [t for _, t in queries])
    return events, queries, arguments


def decode(view, out: np.ndarray, dictionaries: dict) -> list[list[object]]:
    """Kernel output as Python values per feature (None for null, strings decoded).

    A list feature's value is a list of its entries (top_k: (value, count) pairs), read
    from its item rows; the rows past its length must be NaN.
    """
    result = []
    for k, name in enumerate(view.feature_names):
        column = view.string_feature_columns.get(name)

        def value(x: float, column: str | None = column) -> object:
            if math.isnan(x):
                return None
            return dictionaries[column][int(x)] if column else float(x)

        plan = view.list_features.get(name)
        if plan is None:
            result.append([value(x) for x in out[k]])
            continue
        size = plan.items // 2 if plan.ranked else plan.items
        lists: list[object] = []
        for j, length in enumerate(out[k]):
            assert length == int(length) and 0 <= length <= size, (name, length)
            if length == 0:  # an empty list is null
                lists.append(None)
                continue
            rows = [out[plan.item_row : plan.item_row + size, j]]
            if plan.ranked:
                rows.append(out[plan.item_row + size : plan.item_row + 2 * size, j])
            for entries in rows:
                assert np.isnan(entries[int(length):]).all(), (name, entries)
                assert not np.isnan(entries[:int(length)]).any(), (name, entries)
            items = [value(x) for x in rows[0][:int(length)]]
            if plan.ranked:
                items = [(v, float(c)) for v, c in zip(items, rows[1], strict=False)]
            lists.append(items)
        result.append(lists)
    return result


def close(got: object, expected: object) -> bool:
    if isinstance(got, list) or isinstance(expected, list):
        # List entries are kernel inputs or counts: they must match exactly.
        return (isinstance(got, list) and isinstance(expected, list)
                and len(got) == len(expected)
                and all(same(g, e) for g, e in zip(got, expected, strict=True)))
    if got is None or expected is None or isinstance(expected, str):
        return got == expected
    return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-9)


def agrees(feature: FeatureSpec, got: object, expected: object) -> bool:
    """`close`, except approx_count_distinct beyond its exact form (more than
    2**precision / 16 distinct values): within 3 standard errors (1.04 / sqrt(2**precision)
    relative) of the true count. approx_percentile is exact while the window holds at most
    32 values, and within 1% (relative) of the exact quantile beyond."""
    if feature.agg == "approx_count_distinct":
        registers = 2 ** (feature.precision or 14)
        assert isinstance(expected, int)
        if expected > registers // 16:
            return (isinstance(got, float) and got == int(got)
                    and abs(got - expected) <= 3 * 1.04 / math.sqrt(registers) * expected)
    if feature.agg == "approx_percentile" and isinstance(expected, list) and not close(
            got, expected):
        return (isinstance(got, list) and len(got) == len(expected) and all(
            abs(g - e) <= 0.01 * abs(e) + 1e-12 for g, e in zip(got, expected, strict=True)))
    return close(got, expected)


def same(got: object, expected: object) -> bool:
    if isinstance(expected, tuple):
        return (isinstance(got, tuple) and len(got) == len(expected)
                and all(same(g, e) for g, e in zip(got, expected, strict=True)))
    if isinstance(expected, str):
        return got == expected
    return got is not None and float(got) == float(expected)


@settings(max_examples=150, deadline=None)
@given(events=s.events, queries=s.queries)
def test_training_values_match_reference(view, events, queries) -> None:
    events, queries, arguments = training_inputs(view, events, queries)
    got = decode(view, view.training_values(*arguments), arguments[3])
    for k, feature in enumerate(FEATURES):
        for j, (entity, t) in enumerate(queries):
            mine = [Event(ts, {**row, "event_ts": ts}) for e, ts, row in events if e == entity]
            expected = feature_value(feature, mine, t)
            assert agrees(feature, got[k][j], expected), (feature.name, entity, t,
                                                          got[k][j], expected)


@settings(max_examples=60, deadline=None)
@given(events=s.events, queries=s.queries,
       chosen=st.sets(st.sampled_from([f.name for f in FEATURES]), min_size=1))
def test_training_values_of_some_features_equal_all_bit_for_bit(view, events, queries,
                                                               chosen) -> None:
    _, _, arguments = training_inputs(view, events, queries)
    everything = view.training_values(*arguments)
    names = [f.name for f in FEATURES if f.name in chosen]
    some = view.training_values(*arguments, features=names)
    rows = view.rows_of(names)
    np.testing.assert_array_equal(some[rows], everything[rows])
    others = np.setdiff1d(np.arange(view.output_rows), rows)
    assert np.isnan(some[others]).all()


def test_training_values_of_an_unknown_feature_name_it(view) -> None:
    none = np.zeros(0, np.int64)
    with pytest.raises(ValueError, match="view 'v' has no feature 'nope'"):
        view.training_values(none, none, {}, {}, none, none, features=["n_1h", "nope"])


def split(events: list, end: int) -> list:
    return [e for e in events if e[1] < end]


def states_at(view, events: list, end: int, old=None, dictionaries=None):
    columns, own = columns_of(events, view, (dictionaries or {}).get("category"))
    entities = [e for e, _, _ in events]
    if old is None:
        states = view.build_states(entities, [t for _, t, _ in events], columns,
                                   dictionaries or own, end)
    else:
        states = view.update_states(old, entities, [t for _, t, _ in events], columns,
                                    dictionaries or own, end)
    return dict(zip(states.entities.tolist(), states.blobs, strict=True))


@settings(max_examples=100, deadline=None)
@given(events=s.events, end=s.times, offsets=st.lists(st.integers(0, 3 * s.DAY), min_size=1,
                                                       max_size=5))
def test_online_equals_offline_bit_for_bit(view, events, end, offsets) -> None:
    events = sort_events(events)
    before = split(events, end)
    _, dictionaries = columns_of(events, view)
    blobs = states_at(view, before, end, dictionaries=dictionaries)
    for entity in range(5):
        ats = [end + offset for offset in sorted(offsets)]
        online = view.values_from_states([blobs.get(entity)] * len(ats), np.array(ats))
        columns, _ = columns_of(before, view, dictionaries["category"])
        offline = view.training_values(
            [e for e, _, _ in before], [t for _, t, _ in before], columns, dictionaries,
            [entity] * len(ats), ats)
        np.testing.assert_array_equal(online, offline)


@settings(max_examples=60, deadline=None)
@given(events=s.events, first_end=s.times, gap=st.integers(0, 2 * s.DAY),
       offset=st.integers(0, s.DAY))
def test_incremental_states_equal_full_rebuild(view, events, first_end, gap, offset) -> None:
    events = sort_events(events)
    second_end = first_end + gap
    _, dictionaries = columns_of(events, view)
    first = states_at(view, split(events, first_end), first_end, dictionaries=dictionaries)
    newer = [e for e in split(events, second_end) if e[1] >= first_end]
    entities = sorted({e for e, _, _ in newer})
    updated = dict(first)
    if newer:
        updated.update(states_at(view, newer, second_end, [first.get(e) for e in entities],
                                 dictionaries))
    full = states_at(view, split(events, second_end), second_end, dictionaries=dictionaries)
    at = second_end + offset
    for entity in range(5):
        a = view.values_from_states([updated.get(entity)], at)
        b = view.values_from_states([full.get(entity)], at)
        np.testing.assert_array_equal(a, b)


# top_k beyond its counters: qty takes 26 values, more than 4 * k, so the counts may be
# approximate (Misra-Gries); each stays within N / (4k + 1) below the true count.
TOP_FEATURES = (
    FeatureSpec("top_qty_life", "top_k", "qty", None, None, k=1),
    FeatureSpec("top_qty_1d", "top_k", "qty", D, H, k=1),
    FeatureSpec("top2_qty_1h", "top_k", "qty", H, 5 * M, k=2),
)
TOP_VIEW = ViewSpec("top", "src", ("user",), "event_ts", TOP_FEATURES)


@pytest.fixture(scope="module")
def top_view(tmp_path_factory: pytest.TempPathFactory):
    spec = GraphSpec(views=(TOP_VIEW,), request_views=(), schemas=(("src", SCHEMA),))
    return compile_graph(spec, tmp_path_factory.mktemp("top_k")).views["top"]


@settings(max_examples=40, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 1), s.times, s.rows), max_size=80),
       queries=s.queries, end=s.times,
       offsets=st.lists(st.integers(0, 2 * s.DAY), min_size=1, max_size=4))
def test_top_k_beyond_its_counters_within_bounds(top_view, events, queries, end,
                                                 offsets) -> None:
    events, queries, arguments = training_inputs(top_view, events, queries)
    dictionaries = arguments[3]
    got = decode(top_view, top_view.training_values(*arguments), dictionaries)
    for k, feature in enumerate(TOP_FEATURES):
        counters = 4 * feature.k
        for j, (entity, t) in enumerate(queries):
            mine = [Event(ts, {**row, "event_ts": ts}) for e, ts, row in events if e == entity]
            every = feature_value(replace(feature, k=10**6), mine, t) or []
            true = dict(every)
            total = sum(true.values())
            reported = got[k][j]
            where = (feature.name, entity, t, reported, every)
            if total == 0:
                assert reported is None, where
                continue
            if len(true) <= counters:
                assert close(reported, every[:feature.k]), where
            if reported is None:
                continue
            assert len(reported) <= feature.k, where
            assert reported == sorted(reported, key=lambda pair: (-pair[1], pair[0])), where
            for value, count in reported:
                assert true.get(value, 0) - total / (counters + 1) <= count, where
                assert count <= true.get(value, 0), where
    before = split(events, end)
    blobs = states_at(top_view, before, end, dictionaries=dictionaries)
    ats = [end + offset for offset in sorted(offsets)]
    columns, _ = columns_of(before, top_view, dictionaries["category"])
    for entity in range(3):
        online = top_view.values_from_states([blobs.get(entity)] * len(ats), np.array(ats))
        offline = top_view.training_values(
            [e for e, _, _ in before], [t for _, t, _ in before], columns, dictionaries,
            [entity] * len(ats), ats)
        np.testing.assert_array_equal(online, offline)


def test_distinct_count_beyond_its_exact_form(view) -> None:
    """Hypothesis rarely puts more than 16 distinct amounts in one entity's day: here 20
    to 60 distinct amounts (some repeated) make distinct_amount_1d a HyperLogLog, compared
    with the reference within its bound, online against offline bit for bit."""
    rng = np.random.default_rng(7)
    base = s.BASE + D
    events = []
    for entity, distinct in enumerate((20, 33, 60)):
        amounts = rng.choice(np.arange(distinct) * 1.25, 3 * distinct)
        amounts[: distinct] = np.arange(distinct) * 1.25
        for i, amount in enumerate(amounts):
            row = {"amount": float(amount), "qty": i % 7, "category": "a", "flag": False}
            events.append((entity, base + i * M, row))
    events = sort_events(events)
    columns, dictionaries = columns_of(events, view)
    end = base + 3 * H
    queries = [(entity, t) for entity in range(3) for t in (base + 10 * M, end, end + H)]
    out = view.training_values(
        [e for e, _, _ in events], [t for _, t, _ in events], columns, dictionaries,
        [e for e, _ in queries], [t for _, t in queries])
    got = decode(view, out, dictionaries)
    k = view.feature_names.index("distinct_amount_1d")
    feature = FEATURES[k]
    beyond = 0
    for j, (entity, t) in enumerate(queries):
        mine = [Event(ts, {**row, "event_ts": ts}) for e, ts, row in events if e == entity]
        expected = feature_value(feature, mine, t)
        beyond += expected > 16
        assert agrees(feature, got[k][j], expected), (entity, t, got[k][j], expected)
    assert beyond >= 6
    blobs = states_at(view, events, end, dictionaries=dictionaries)
    for entity in range(3):
        ats = [end, end + H]
        online = view.values_from_states([blobs.get(entity)] * 2, np.array(ats))
        offline = view.training_values(
            [e for e, _, _ in events], [t for _, t, _ in events], columns, dictionaries,
            [entity] * 2, ats)
        np.testing.assert_array_equal(online, offline)
