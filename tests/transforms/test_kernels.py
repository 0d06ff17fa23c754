"""Property tests: compiled kernels against the reference semantics (tests/reference.py).

One registry exercising every aggregation, several windows and hops, lifetime features,
nulls and strings is compiled once; hypothesis draws events and query times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def decode(view, out: np.ndarray, dictionaries: dict) -> list[list[object]]:
    """Kernel output as Python values per feature (None for null, strings decoded)."""
    result = []
    for k, name in enumerate(view.feature_names):
        column = view.string_feature_columns.get(name)
        values = []
        for x in out[k]:
            if math.isnan(x):
                values.append(None)
            elif column:
                values.append(dictionaries[column][int(x)])
            else:
                values.append(float(x))
        result.append(values)
    return result


def close(got: object, expected: object) -> bool:
    if got is None or expected is None or isinstance(expected, str):
        return got == expected
    return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(events=s.events, queries=s.queries)
def test_training_values_match_reference(view, events, queries) -> None:
    events = sort_events(events)
    queries = sorted(queries)
    columns, dictionaries = columns_of(events, view)
    out = view.training_values(
        [e for e, _, _ in events], [t for _, t, _ in events], columns, dictionaries,
        [e for e, _ in queries], [t for _, t in queries])
    got = decode(view, out, dictionaries)
    for k, feature in enumerate(FEATURES):
        for j, (entity, t) in enumerate(queries):
            mine = [Event(ts, {**row, "event_ts": ts}) for e, ts, row in events if e == entity]
            expected = feature_value(feature, mine, t)
            assert close(got[k][j], expected), (feature.name, entity, t, got[k][j], expected)


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
