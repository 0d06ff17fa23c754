"""Profiles of columns, the summaries fits keep, and comparisons of profiles."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from featurestore import InputError
from featurestore.drift.comparison import compare_profiles
from featurestore.drift.feature_names import FeatureNames
from featurestore.drift.profiles import (
    QUANTILE_POINTS,
    TOP_VALUES,
    CategoricalProfile,
    NumericProfile,
    profile_column,
    profile_of_summary,
    profile_values,
    summary,
)
from featurestore.registry import parse_registry
from featurestore.registry.drift_settings import DriftSettings
from tests.projects import DEMO_TEXT


def test_numbers_drop_nulls_and_nan_and_count_them() -> None:
    profile = profile_column("x", pa.array([3.0, None, float("nan"), 1.0, 2.0]))
    assert isinstance(profile, NumericProfile)
    assert (profile.rows, profile.nulls, profile.count) == (5, 2, 3)
    assert profile.values.tolist() == [1.0, 2.0, 3.0]  # type: ignore[union-attr]
    integers = profile_column("n", pa.chunked_array([[1, 2], [None, 5]], pa.int64()))
    assert integers.values.tolist() == [1.0, 2.0, 5.0]  # type: ignore[union-attr]


def test_timestamps_are_numbers_in_microseconds() -> None:
    column = pa.array([1_000_000, None], pa.timestamp("s", tz="UTC"))
    profile = profile_column("t", column)
    assert profile.values.tolist() == [1e12]  # type: ignore[union-attr]


def test_strings_and_booleans_are_categories() -> None:
    strings = profile_column("c", pa.array(["a", "b", None, "a"]).dictionary_encode())
    assert isinstance(strings, CategoricalProfile)
    assert strings.counts == {"a": 2, "b": 1} and strings.nulls == 1
    booleans = profile_values("b", [True, False, True, None])
    assert booleans.counts == {"true": 2, "false": 1}  # type: ignore[union-attr]


def test_only_nulls_give_a_profile_without_values() -> None:
    profile = profile_values("x", [None, None])
    assert (profile.rows, profile.count) == (2, 0)


def test_unusable_values_are_refused_naming_the_feature() -> None:
    with pytest.raises(InputError, match="feature 'x' has values of mixed types"):
        profile_values("x", [1, "a"])
    with pytest.raises(InputError, match="feature 'y' has values of type list"):
        profile_column("y", pa.array([[1], [2]]))


def test_a_numeric_summary_keeps_101_exact_quantiles() -> None:
    values = np.random.default_rng(3).exponential(size=999)
    stored = summary(profile_column("x", pa.array(np.append(values, np.nan))))
    assert stored["rows"] == 1000 and stored["nulls"] == 1
    expected = np.quantile(values, np.linspace(0, 1, QUANTILE_POINTS))
    assert stored["quantiles"] == expected.tolist()
    back = profile_of_summary(stored)
    assert isinstance(back, NumericProfile) and back.values is None
    assert back.deciles().tolist() == np.quantile(values, np.linspace(0.1, 0.9, 9)).tolist()


def test_a_categorical_summary_keeps_the_most_frequent_values_and_counts_the_rest() -> None:
    counts = {f"v{i:04d}": 1 + (i % 7) for i in range(TOP_VALUES + 500)}
    stored = summary(CategoricalProfile(sum(counts.values()) + 4, 4, counts))
    assert len(stored["counts"]) == TOP_VALUES
    kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
    assert stored["counts"] == dict(kept)
    assert stored["other"] == sum(counts.values()) - sum(count for _, count in kept)
    back = profile_of_summary(stored)
    assert isinstance(back, CategoricalProfile) and back.other == stored["other"]


def test_values_a_summary_left_out_compare_as_its_other_count() -> None:
    baseline = CategoricalProfile(100, 0, {"a": 50, "b": 30}, other=20)
    # 20% values the baseline did not keep, as in the baseline: no drift.
    same = CategoricalProfile(100, 0, {"a": 50, "b": 30, "x": 12, "y": 8})
    result = compare_profiles("c", baseline, same, DriftSettings())
    assert result.measures == {"linf": 0.0, "js": 0.0} and not result.drifted
    moved = CategoricalProfile(100, 0, {"a": 20, "b": 30, "z": 50})
    result = compare_profiles("c", baseline, moved, DriftSettings())
    assert result.measures["linf"] == pytest.approx(0.3) and result.drifted


def test_a_side_without_values_is_drift_and_says_so() -> None:
    baseline = profile_values("x", [1.0, 2.0, 3.0])
    result = compare_profiles("x", baseline, profile_values("x", [None, None]), DriftSettings())
    assert result.drifted and result.measures == {}
    assert "no values in the current" in result.render()
    assert "nulls 0.0% -> 100.0%" in result.render()
    assert result.to_dict()["current"] == {"rows": 2, "nulls": 2, "null_fraction": 1.0}


def test_kinds_that_differ_are_refused() -> None:
    with pytest.raises(InputError, match="feature 'x' is numeric in the baseline and "
                                         "categorical in the current data"):
        compare_profiles("x", profile_values("x", [1.0]), profile_values("x", ["a"]),
                         DriftSettings())


def test_thresholds_decide_the_verdict() -> None:
    rng = np.random.default_rng(5)
    baseline = profile_column("x", pa.array(rng.normal(size=2000)))
    current = profile_column("x", pa.array(rng.normal(0.3, 1, size=2000)))
    result = compare_profiles("x", baseline, current, DriftSettings())
    assert result.over == ("ks",) and result.drifted
    relaxed = compare_profiles("x", baseline, current, DriftSettings(ks=0.5))
    assert relaxed.over == () and not relaxed.drifted
    assert relaxed.to_dict()["thresholds"] == {"psi": 0.2, "ks": 0.5}


def test_feature_names_resolve_columns_and_lists() -> None:
    registry = parse_registry(DEMO_TEXT.replace(
        "request_views:",
        "  card_txn:\n    source: transactions\n    entity: user\n    features:\n"
        "      amount_sum_7d: {agg: sum, expr: amount, window: 7d}\nrequest_views:", 1))
    names = FeatureNames(registry)
    assert names.of_column("txn_count_1h") == ("user_txn", "txn_count_1h")
    assert names.of_column("card_txn__amount_sum_7d") == ("card_txn", "amount_sum_7d")
    assert names.of_column("amount_sum_7d") is None  # two views have it
    assert names.of_column("label") is None
    assert names.shown(("card_txn", "amount_sum_7d")) == "card_txn:amount_sum_7d"
    assert names.shown(("user_txn", "txn_count_1h")) == "txn_count_1h"
    assert names.resolve(["txn_count_1h", "user_txn:amount_sum_7d", "fraud_v1"]) == [
        ("user_txn", "txn_count_1h"), ("user_txn", "amount_sum_7d"),
        ("txn_context", "amount_z"), ("user_txn", "last_category")]
    with pytest.raises(InputError, match=r"^feature name 'amount_sum_7d' is in several views "
                                         r"\(user_txn, card_txn\): write 'view:amount_sum_7d'$"):
        names.resolve(["amount_sum_7d"])
