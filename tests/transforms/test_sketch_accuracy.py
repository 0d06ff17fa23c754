"""Sketch accuracy on a million values: approx_count_distinct and approx_percentile
against exact answers computed with numpy, well beyond their exact forms.

One entity's events spread over 100 hours; each sketch has a lifetime feature and a
windowed one (90 hours, which holds most events). The documented bounds: a distinct count
within 3 standard errors (1.04 / sqrt(2**precision) relative) of the true count; a
quantile within 1% of the exact nearest-rank quantile (0 exactly 0). Online (states) must
equal offline (training) bit for bit, also when the states are built in two steps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from transforms import compile_graph
from transforms.spec import ColumnType, FeatureSpec, GraphSpec, ViewSpec

M = 60_000_000
H = 60 * M
N = 1_000_000
END = 100 * H  # every event is before END; the features are asked at END
WINDOW, HOP = 90 * H, H
Q = (0.0, 0.01, 0.5, 0.9, 0.99, 1.0)
SHUFFLED_Q = (0.9, 0.0, 1.0, 0.5, 0.01, 0.99, 0.5)  # out of order, one repeated

FEATURES = (
    FeatureSpec("distinct_life", "approx_count_distinct", "key", None, None),
    FeatureSpec("distinct_90h", "approx_count_distinct", "key", WINDOW, HOP),
    FeatureSpec("distinct10_life", "approx_count_distinct", "key", None, None, precision=10),
    FeatureSpec("distinct10_90h", "approx_count_distinct", "key", WINDOW, HOP, precision=10),
    FeatureSpec("pct_life", "approx_percentile", "amount", None, None, q=Q),
    FeatureSpec("pct_90h", "approx_percentile", "amount", WINDOW, HOP, q=Q),
    FeatureSpec("pct_mixed_life", "approx_percentile", "mixed", None, None, q=Q),
    FeatureSpec("pct_mixed_90h", "approx_percentile", "mixed", WINDOW, HOP, q=SHUFFLED_Q),
)
SCHEMA = (("key", ColumnType.INT), ("amount", ColumnType.FLOAT), ("mixed", ColumnType.FLOAT),
          ("ts", ColumnType.TIMESTAMP), ("user", ColumnType.INT))
VIEW = ViewSpec("sketches", "src", ("user",), "ts", FEATURES)


@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory):
    spec = GraphSpec(views=(VIEW,), request_views=(), schemas=(("src", SCHEMA),))
    return compile_graph(spec, tmp_path_factory.mktemp("sketches")).views["sketches"]


@pytest.fixture(scope="module")
def data(view) -> dict:
    """Events (sorted by time) and the offline values at END."""
    rng = np.random.default_rng(20240101)
    ts = np.sort(rng.integers(0, END, N)).astype(np.int64)
    # A few hundred thousand distinct keys, some repeated often.
    key = rng.integers(0, 400_000, N).astype(np.float64)
    amount = rng.lognormal(3.0, 1.5, N)
    # Negatives, zeros and positives over many magnitudes.
    mixed = rng.lognormal(0.0, 2.0, N) * rng.choice([-1.0, 1.0], N)
    mixed[rng.random(N) < 0.07] = 0.0
    mixed[rng.random(N) < 0.05] = np.nan  # nulls are skipped
    columns = {"key": key, "amount": amount, "mixed": mixed}
    entities = np.ones(N, np.int64)
    out = view.training_values(entities, ts, columns, {}, np.array([1], np.int64),
                               np.array([END], np.int64))
    return {"ts": ts, "columns": columns, "entities": entities, "offline": out}


def window_of(feature: FeatureSpec, data: dict) -> np.ndarray:
    """The events inside the feature's window at END."""
    if feature.window_us is None:
        return np.ones(N, bool)
    start = (END // feature.hop_us) * feature.hop_us - feature.window_us
    return (data["ts"] >= start) & (data["ts"] < END)


def test_windows_hold_most_events(data) -> None:
    inside = window_of(FEATURES[1], data).sum()
    assert 0.8 * N < inside < N


@pytest.mark.parametrize("name", [f.name for f in FEATURES if f.agg == "approx_count_distinct"])
def test_distinct_count_within_three_standard_errors(view, data, name: str) -> None:
    feature = next(f for f in FEATURES if f.name == name)
    keys = data["columns"]["key"][window_of(feature, data)]
    true = len(np.unique(keys[~np.isnan(keys)]))
    assert true > 200_000
    estimate = data["offline"][view.feature_names.index(name), 0]
    assert estimate == int(estimate)
    error = 1.04 / math.sqrt(2 ** (feature.precision or 14))
    assert abs(estimate - true) <= 3 * error * true, (name, estimate, true)


@pytest.mark.parametrize("name", [f.name for f in FEATURES if f.agg == "approx_percentile"])
def test_quantiles_within_one_percent(view, data, name: str) -> None:
    feature = next(f for f in FEATURES if f.name == name)
    values = data["columns"][feature.expr][window_of(feature, data)]
    values = np.sort(values[~np.isnan(values)])
    n = len(values)
    assert n > 32  # beyond the exact form
    out = data["offline"]
    assert feature.q is not None
    assert out[view.feature_names.index(name), 0] == len(feature.q)
    item_row = view.list_features[name].item_row
    for j, q in enumerate(feature.q):
        exact = values[max(math.ceil(q * n), 1) - 1]
        got = out[item_row + j, 0]
        where = (name, q, got, exact)
        if exact == 0.0:
            assert got == 0.0, where
        else:
            assert abs(got - exact) <= (0.01 + 1e-12) * abs(exact), where


def test_mixed_dataset_has_negatives_zeros_and_positives(data) -> None:
    mixed = data["columns"]["mixed"]
    assert (mixed < 0).sum() > 100_000 and (mixed == 0).sum() > 50_000
    assert (mixed > 0).sum() > 100_000


def test_online_equals_offline_bit_for_bit(view, data) -> None:
    states = view.build_states(data["entities"], data["ts"], data["columns"], {}, END)
    online = view.values_from_states(states.blobs, np.array([END], np.int64))
    np.testing.assert_array_equal(online, data["offline"])


def test_states_built_in_two_steps_equal_offline(view, data) -> None:
    middle = 50 * H
    first = data["ts"] < middle
    columns = data["columns"]
    states = view.build_states(data["entities"][first], data["ts"][first],
                               {c: v[first] for c, v in columns.items()}, {}, middle)
    rest = ~first
    states = view.update_states(states.blobs, data["entities"][rest], data["ts"][rest],
                                {c: v[rest] for c, v in columns.items()}, {}, END)
    online = view.values_from_states(states.blobs, np.array([END], np.int64))
    np.testing.assert_array_equal(online, data["offline"])


def test_infinities_and_the_largest_floats_keep_their_quantiles(tmp_path_factory) -> None:
    """An infinity is counted apart from the bins, so the finite quantiles keep their
    1% bound; bins near the largest float stay finite."""
    spec = FeatureSpec("p", "approx_percentile", "x", None, None, q=(0.0, 0.5, 1.0))
    schema = (("x", ColumnType.FLOAT), ("ts", ColumnType.TIMESTAMP), ("u", ColumnType.INT))
    graph = GraphSpec((ViewSpec("v", "s", ("u",), "ts", (spec,)),), (), (("s", schema),))
    view = compile_graph(graph, tmp_path_factory.mktemp("inf")).views["v"]

    def quantiles(values: list[float]) -> np.ndarray:
        n = len(values)
        entity, ts = np.ones(n, np.int64), np.arange(n, dtype=np.int64)
        columns = {"x": np.asarray(values, dtype=float)}
        out = view.training_values(entity, ts, columns, {}, np.ones(1, np.int64),
                                   np.array([n + 1], np.int64))
        online = view.values_from_states(view.build_states(entity, ts, columns, {}, n).blobs,
                                         n + 1)
        np.testing.assert_array_equal(online, out)
        row = view.list_features["p"].item_row
        return out[row:row + 3, 0]

    low, middle, high = quantiles([*range(1, 200), np.inf])
    assert abs(low - 1) <= 0.01 and abs(middle - 100) <= 1.0 and high == np.inf
    low, middle, high = quantiles([-np.inf] * 3 + [float(x) for x in range(300)] + [np.inf])
    assert low == -np.inf and abs(middle - 148) <= 1.48 and high == np.inf  # rank 151
    largest = quantiles(list(np.geomspace(1e300, 1.7e308, 200)))[2]
    assert np.isfinite(largest) and abs(largest - 1.7e308) <= 0.01 * 1.7e308
