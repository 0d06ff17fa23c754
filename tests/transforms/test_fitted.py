"""Fitted transforms without a store: the analyzers' statistics against numpy and pandas,
and the compiled kernel against a plain-Python reading of each function's rule
(`transforms.fitted_kernel`'s module docstring)."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.analyzers import Categories, FitColumn, fit
from transforms.errors import FitError
from transforms.fitted_functions import TransformSpec, with_defaults
from transforms.fitted_kernel import FittedProgram, FittedTransform
from transforms.spec import ColumnType

FLOAT, INT, STRING = ColumnType.FLOAT, ColumnType.INT, ColumnType.STRING

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
maybe_numbers = st.lists(st.one_of(st.none(), finite, st.sampled_from([0.0, 1.0, -2.5])),
                         min_size=0, max_size=40)
numbers = maybe_numbers.filter(lambda values: any(v is not None for v in values))
words = st.sampled_from(["a", "b", "c", "ab", "B", "grocery", "zz", "é"])
texts = st.lists(st.one_of(st.none(), words), max_size=40)
small_ints = st.lists(st.one_of(st.none(), st.integers(-12, 12)), max_size=40)
quick = settings(deadline=None, max_examples=60)
levels = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=5)


def spec(fn: str, kind: ColumnType = FLOAT, **given: object) -> TransformSpec:
    return TransformSpec("t", fn, kind, with_defaults(fn, given))


def as_array(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], np.float64)


def number_column(values: list, kind: ColumnType = FLOAT) -> FitColumn:
    return FitColumn("x", kind, numbers=as_array(values))


def string_column(values: list[str | None]) -> FitColumn:
    """Strings as the store holds them: codes into a dictionary in arbitrary order."""
    dictionary = sorted({v for v in values if v is not None}, key=lambda v: v[::-1])
    dictionary = ["unused", *dictionary]
    codes = np.array([np.nan if v is None else float(dictionary.index(v)) for v in values])
    return FitColumn("s", STRING,
                     given_categories=Categories.of_strings(codes, dictionary))


def present(values: list) -> list:
    return [v for v in values if v is not None]


# --- analyzers ----------------------------------------------------------------------


@quick
@given(numbers)
def test_zscore_is_the_population_mean_and_std(values: list) -> None:
    stats = fit(spec("zscore"), number_column(values))
    data = np.array(present(values), np.float64)
    np.testing.assert_allclose(stats["mean"], np.mean(data), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], np.std(data, ddof=0), rtol=1e-12, atol=1e-300)
    assert stats["scale"] == (stats["std"] or 1.0)


@quick
@given(numbers)
def test_min_max_is_exact(values: list) -> None:
    stats = fit(spec("min_max"), number_column(values))
    data = present(values)
    assert stats["min"] == min(data) and stats["max"] == max(data)
    assert stats["scale"] == ((max(data) - min(data)) or 1.0)


def pandas_quantiles(values: list, qs: list[float]) -> list[float]:
    series = pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    return [float(series.quantile(q, interpolation="linear")) for q in qs]


@quick
@given(numbers)
def test_robust_scale_is_pandas_quantiles(values: list) -> None:
    stats = fit(spec("robust_scale"), number_column(values))
    p25, median, p75 = pandas_quantiles(values, [0.25, 0.5, 0.75])
    np.testing.assert_allclose([stats["p25"], stats["median"], stats["p75"]],
                               [p25, median, p75], rtol=1e-12, atol=1e-300)
    assert stats["scale"] == ((stats["p75"] - stats["p25"]) or 1.0)


@quick
@given(numbers, st.integers(1, 12))
def test_quantile_bucket_boundaries_are_pandas_quantiles(values: list, buckets: int) -> None:
    stats = fit(spec("quantile_bucket", buckets=buckets), number_column(values))
    expected = pandas_quantiles(values, [k / buckets for k in range(1, buckets)])
    assert len(stats["boundaries"]) == buckets - 1
    np.testing.assert_allclose(stats["boundaries"], expected, rtol=1e-12, atol=1e-300)


@quick
@given(numbers, levels.map(sorted).filter(lambda qs: len(qs) >= 2).map(lambda qs: qs[:2]))
def test_clip_quantiles_are_pandas_quantiles(values: list, qs: list[float]) -> None:
    stats = fit(spec("clip_quantiles", quantiles=qs), number_column(values))
    np.testing.assert_allclose([stats["lower"], stats["upper"]], pandas_quantiles(values, qs),
                               rtol=1e-12, atol=1e-300)


def test_clip_quantiles_default_levels() -> None:
    values = list(range(101))
    stats = fit(spec("clip_quantiles"), number_column(values))
    assert (stats["lower"], stats["upper"]) == (1.0, 99.0)


@quick
@given(numbers)
def test_impute_mean_and_median(values: list) -> None:
    data = present(values)
    mean = fit(spec("impute", strategy="mean"), number_column(values))["fill"]
    median = fit(spec("impute", strategy="median"), number_column(values))["fill"]
    np.testing.assert_allclose(mean, np.mean(data), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(median, pd.Series(data).median(), rtol=1e-12, atol=1e-300)


def most_frequent(values: list, key=lambda v: v) -> object:
    counts = Counter(present(values))
    best = max(counts.values())
    return min((v for v, c in counts.items() if c == best), key=key)


@quick
@given(small_ints.filter(lambda values: any(v is not None for v in values)))
def test_impute_most_frequent_of_ints_takes_the_smallest_of_ties(values: list) -> None:
    fill = fit(spec("impute", INT, strategy="most_frequent"), number_column(values, INT))["fill"]
    assert fill == most_frequent(values) and type(fill) is int


@quick
@given(texts.filter(lambda values: any(v is not None for v in values)))
def test_impute_most_frequent_of_strings_takes_the_first_in_text_order(values: list) -> None:
    fill = fit(spec("impute", STRING, strategy="most_frequent"), string_column(values))["fill"]
    assert fill == most_frequent(values)


def test_impute_constant_is_the_value() -> None:
    stats = fit(spec("impute", FLOAT, strategy="constant", value=-1.5), number_column([None]))
    assert stats == {"fill": -1.5}


def reference_vocabulary(values: list, natural, top_k: int | None,
                         min_count: int) -> tuple[list[str], list[int]]:
    counts = Counter(present(values))
    order = sorted(counts, key=lambda v: (-counts[v], natural(v)))
    kept = [v for v in order if counts[v] >= min_count]
    if top_k is not None:
        kept = kept[:top_k]
    return [str(v) for v in kept], [counts[v] for v in kept]


@quick
@given(texts, st.one_of(st.none(), st.integers(1, 6)), st.integers(1, 4),
       st.sampled_from(["vocabulary", "one_hot"]))
def test_vocabulary_of_strings_is_by_count_then_text(values: list, top_k: int | None,
                                                     min_count: int, fn: str) -> None:
    stats = fit(spec(fn, STRING, top_k=top_k, min_count=min_count), string_column(values))
    if fn == "one_hot" and top_k is None:
        top_k = 10  # the default top_k of one_hot
    expected = reference_vocabulary(values, lambda v: v, top_k, min_count)
    assert (stats["values"], stats["counts"]) == expected


@quick
@given(small_ints, st.one_of(st.none(), st.integers(1, 6)), st.integers(1, 3))
def test_vocabulary_of_ints_is_by_count_then_numeric_order(values: list, top_k: int | None,
                                                           min_count: int) -> None:
    stats = fit(spec("vocabulary", INT, top_k=top_k, min_count=min_count),
                number_column(values, INT))
    assert (stats["values"], stats["counts"]) == reference_vocabulary(values, lambda v: v,
                                                                      top_k, min_count)


def test_numeric_statistics_of_an_all_null_column_fail() -> None:
    for fn, given_ in [("zscore", {}), ("min_max", {}), ("robust_scale", {}),
                       ("quantile_bucket", {"buckets": 4}), ("impute", {"strategy": "mean"})]:
        with pytest.raises(FitError, match="no non-null values"):
            fit(spec(fn, **given_), number_column([None, None]))
    with pytest.raises(FitError, match="no non-null values"):
        fit(spec("impute", STRING, strategy="most_frequent"), string_column([None]))


def test_zero_scales_are_one() -> None:
    column = [3.0, 3.0, None]
    assert fit(spec("zscore"), number_column(column))["scale"] == 1.0
    assert fit(spec("min_max"), number_column(column))["scale"] == 1.0
    assert fit(spec("robust_scale"), number_column(column))["scale"] == 1.0


# --- kernel -------------------------------------------------------------------------


def blake(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def is_null(value: float | None) -> bool:
    return value is None or math.isnan(value)


def run_one(fitted: FittedTransform, column: np.ndarray,
            keys: list[str] | None = None) -> tuple[np.ndarray, dict[int, list[str]]]:
    program = FittedProgram([fitted], 1)
    return program.run(column.reshape(1, -1), {0: keys} if keys is not None else {})


def check(out: np.ndarray, expected: list[float | None]) -> None:
    np.testing.assert_array_equal(out, as_array(expected))


kernel_numbers = st.lists(st.one_of(st.none(), finite, st.sampled_from([-1.0, -1.5, 0.0])),
                          max_size=30)
centers = st.floats(-1e3, 1e3, allow_nan=False)
scales = st.one_of(st.floats(1e-3, 1e3), st.just(1.0))


@quick
@given(kernel_numbers, centers, scales, st.sampled_from(
    [("zscore", "mean"), ("min_max", "min"), ("robust_scale", "median")]))
def test_affine_transforms(values: list, center: float, scale: float,
                           fn_key: tuple[str, str]) -> None:
    fn, key = fn_key
    fitted = FittedTransform(spec(fn), 0, {key: center, "scale": scale})
    out, _ = run_one(fitted, as_array(values))
    check(out[0], [None if v is None else (v - center) / scale for v in values])


@quick
@given(kernel_numbers, st.lists(finite, max_size=8).map(sorted))
def test_quantile_bucket_counts_the_boundaries_at_or_below(values: list,
                                                            boundaries: list[float]) -> None:
    fitted = FittedTransform(spec("quantile_bucket", buckets=len(boundaries) + 1), 0,
                             {"boundaries": boundaries})
    out, _ = run_one(fitted, as_array(values))
    check(out[0], [None if v is None else sum(1 for b in boundaries if b <= v)
                   for v in values])


@quick
@given(kernel_numbers, st.tuples(finite, finite).map(sorted))
def test_clip(values: list, bounds: list[float]) -> None:
    low, high = bounds
    fitted = FittedTransform(spec("clip_quantiles"), 0, {"lower": low, "upper": high})
    out, _ = run_one(fitted, as_array(values))
    check(out[0], [None if v is None else min(max(v, low), high) for v in values])


@quick
@given(kernel_numbers, finite)
def test_numeric_impute_fills_nulls_only(values: list, fill: float) -> None:
    fitted = FittedTransform(spec("impute", strategy="mean"), 0, {"fill": fill})
    out, _ = run_one(fitted, as_array(values))
    check(out[0], [fill if v is None else v for v in values])


@quick
@given(kernel_numbers)
def test_log1p_is_null_at_or_below_minus_one(values: list) -> None:
    out, _ = run_one(FittedTransform(spec("log1p"), 0, {}), as_array(values))
    check(out[0], [None if v is None or v <= -1 else math.log1p(v) for v in values])


keyed = st.lists(st.one_of(st.none(), words), max_size=30)
vocabularies = st.lists(words, unique=True, max_size=6)


def codes_of(values: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """The call's categories (in text order) and each row's code into them."""
    keys = sorted({v for v in values if v is not None})
    return as_array([None if v is None else keys.index(v) for v in values]), keys


@quick
@given(keyed, vocabularies, st.integers(0, 4))
def test_vocabulary_ranks_and_oov_buckets(values: list, vocabulary: list[str],
                                          oov: int) -> None:
    fitted = FittedTransform(spec("vocabulary", STRING, oov_buckets=oov), 0,
                             {"values": vocabulary, "counts": [1] * len(vocabulary)})
    codes, keys = codes_of(values)
    out, _ = run_one(fitted, codes, keys)

    def rule(v: str | None) -> float | None:
        if v is None:
            return None
        if v in vocabulary:
            return vocabulary.index(v)
        return len(vocabulary) + blake(v) % oov if oov else None

    check(out[0], [rule(v) for v in values])


@quick
@given(keyed, vocabularies)
def test_one_hot_has_one_column_per_value_and_zeros_for_null_or_unseen(
        values: list, vocabulary: list[str]) -> None:
    fitted = FittedTransform(spec("one_hot", STRING), 0,
                             {"values": vocabulary, "counts": [1] * len(vocabulary)})
    assert fitted.output_names() == [f"t__{value}" for value in vocabulary]
    codes, keys = codes_of(values)
    out, _ = run_one(fitted, codes, keys)
    assert out.shape == (len(vocabulary), len(values))
    for j, value in enumerate(vocabulary):
        check(out[j], [1.0 if v == value else 0.0 for v in values])


@quick
@given(keyed, st.integers(1, 50))
def test_hash_bucket_is_blake2b_modulo_buckets(values: list, buckets: int) -> None:
    fitted = FittedTransform(spec("hash_bucket", STRING, buckets=buckets), 0, {})
    codes, keys = codes_of(values)
    out, _ = run_one(fitted, codes, keys)
    check(out[0], [None if v is None else blake(v) % buckets for v in values])


@quick
@given(keyed, words)
def test_string_impute_fills_with_the_fitted_value(values: list, fill: str) -> None:
    fitted = FittedTransform(spec("impute", STRING, strategy="most_frequent"), 0,
                             {"fill": fill})
    codes, keys = codes_of(values)
    out, out_keys = run_one(fitted, codes, keys)
    categories = out_keys[0]
    assert [categories[int(code)] for code in out[0]] == [
        fill if v is None else v for v in values]


@quick
@given(small_ints, st.lists(st.integers(-12, 12), unique=True, max_size=5))
def test_int_vocabulary_uses_decimal_text(values: list, vocabulary: list[int]) -> None:
    fitted = FittedTransform(spec("vocabulary", INT), 0,
                             {"values": [str(v) for v in vocabulary],
                              "counts": [1] * len(vocabulary)})
    categories = Categories.of_numbers(as_array(values))
    out, _ = run_one(fitted, categories.codes, list(categories.keys))

    def rule(v: int | None) -> float | None:
        if v is None:
            return None
        if v in vocabulary:
            return vocabulary.index(v)
        return len(vocabulary) + blake(str(v)) % 1

    check(out[0], [rule(v) for v in values])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), finite), st.one_of(st.none(), words)),
                max_size=20),
       st.lists(finite, min_size=1, max_size=4).map(sorted), vocabularies)
def test_a_program_of_many_transforms_equals_each_alone(rows: list, boundaries: list[float],
                                                        vocabulary: list[str]) -> None:
    numbers_, strings = [r[0] for r in rows], [r[1] for r in rows]
    codes, keys = codes_of(strings)
    stats = {"values": vocabulary, "counts": [1] * len(vocabulary)}
    transforms = [
        FittedTransform(spec("zscore"), 0, {"mean": 1.5, "std": 2.0, "scale": 2.0}),
        FittedTransform(spec("one_hot", STRING), 1, stats),
        FittedTransform(spec("quantile_bucket", buckets=len(boundaries) + 1), 0,
                        {"boundaries": boundaries}),
        FittedTransform(spec("vocabulary", STRING), 1, stats),
        FittedTransform(spec("log1p"), 0, {}),
    ]
    inputs = np.vstack([as_array(numbers_), codes])
    out, _ = FittedProgram(transforms, 2).run(inputs, {1: keys})
    row = 0
    for fitted in transforms:
        column = inputs[fitted.input]
        alone, _ = FittedProgram([FittedTransform(fitted.spec, 0, fitted.statistics)], 1).run(
            column.reshape(1, -1), {0: keys} if fitted.categorical else {})
        width = len(fitted.output_names())
        np.testing.assert_array_equal(out[row:row + width], alone)
        row += width
    assert row == out.shape[0]
