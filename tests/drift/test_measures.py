"""The drift measures against plain-Python references, and on samples with fixed seeds:
a shifted distribution is flagged, a second sample of the same one is not."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.drift import measures
from featurestore.registry.drift_settings import (
    JS_THRESHOLD,
    KS_THRESHOLD,
    LINF_THRESHOLD,
    PSI_THRESHOLD,
)

# Small integers make ties, which are where distribution functions jump.
values = st.lists(st.integers(-5, 5).map(float) | st.floats(-10, 10), min_size=1, max_size=40)


def reference_cdf(sample: list[float], x: float, inclusive: bool) -> float:
    return sum(1 for v in sample if (v <= x if inclusive else v < x)) / len(sample)


def reference_quantile_cdf(quantiles: list[float], x: float, inclusive: bool) -> float:
    """sup {p : Q(p) <= x} (or < x), Q linear through (i / n, quantile_i), segment by
    segment."""
    step = 1 / (len(quantiles) - 1)
    best = 0.0
    for i in range(len(quantiles) - 1):
        low, high = quantiles[i], quantiles[i + 1]
        below = (lambda v: v <= x) if inclusive else (lambda v: v < x)
        if not below(low):
            continue
        if below(high):
            best = max(best, (i + 1) * step)
        else:
            best = max(best, i * step + (x - low) / (high - low) * step)
    if len(quantiles) == 1:
        return 1.0 if (quantiles[0] <= x if inclusive else quantiles[0] < x) else 0.0
    return best


def reference_ks(a: list[float], b: list[float]) -> float:
    return max(abs(reference_cdf(a, x, True) - reference_cdf(b, x, True)) for x in a + b)


def reference_psi(expected: list[float], actual: list[float], epsilon: float) -> float:
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, epsilon), max(a, epsilon)
        total += (a - e) * math.log(a / e)
    return total


def reference_js(p: list[float], q: list[float]) -> float:
    def kl(x: list[float], m: list[float]) -> float:
        return sum(xi * math.log2(xi / mi) for xi, mi in zip(x, m, strict=True) if xi > 0)

    m = [(pi + qi) / 2 for pi, qi in zip(p, q, strict=True)]
    return (kl(p, m) + kl(q, m)) / 2


@settings(max_examples=150, deadline=None)
@given(values, values)
def test_sample_cdf_and_ks_match_the_reference(a: list[float], b: list[float]) -> None:
    sorted_a = np.sort(np.asarray(a))
    for x in [*a, *b, -100.0, 100.0]:
        for inclusive in (True, False):
            got = measures.sample_cdf(sorted_a, np.asarray([x]), inclusive)[0]
            assert got == pytest.approx(reference_cdf(a, x, inclusive))
    got = measures.ks_samples(sorted_a, np.sort(np.asarray(b)))
    assert got == pytest.approx(reference_ks(a, b))


@settings(max_examples=150, deadline=None)
@given(values, values)
def test_quantile_cdf_and_ks_match_the_reference(a: list[float], b: list[float]) -> None:
    quantiles = np.quantile(np.asarray(a), np.linspace(0, 1, 11))
    q = [float(v) for v in quantiles]
    points = sorted({*q, *b, *((x + y) / 2 for x, y in itertools.pairwise(q)),
                     min(q) - 1, max(q) + 1})
    for x in points:
        for inclusive in (True, False):
            got = measures.quantile_cdf(quantiles, np.asarray([x]), inclusive)[0]
            assert got == pytest.approx(reference_quantile_cdf(q, x, inclusive), abs=1e-12)
    # The supremum over every point, taken at and just before it, with the references.
    expected = max(max(abs(reference_quantile_cdf(q, x, True) - reference_cdf(b, x, True)),
                       abs(reference_quantile_cdf(q, x, False) - reference_cdf(b, x, False)))
                   for x in points)
    got = measures.ks_quantiles(quantiles, np.sort(np.asarray(b)))
    assert got == pytest.approx(expected, abs=1e-12)


def test_quantile_cdf_of_a_tie_jumps_at_the_tied_value() -> None:
    # 40% of the rows hold 0: quantiles 0..0.4 are 0.
    quantiles = np.concatenate([np.zeros(5), np.linspace(1, 6, 6)])
    assert measures.quantile_cdf(quantiles, np.asarray([0.0]), False)[0] == 0.0
    assert measures.quantile_cdf(quantiles, np.asarray([0.0]), True)[0] == pytest.approx(0.4)
    assert measures.quantile_cdf(quantiles, np.asarray([0.5]), True)[0] == pytest.approx(0.45)
    assert measures.quantile_cdf(quantiles, np.asarray([6.0, 7.0]), True).tolist() == [1.0, 1.0]


def test_ks_from_101_quantiles_is_within_one_percentile_of_the_exact_one() -> None:
    rng = np.random.default_rng(7)
    baseline = np.sort(rng.normal(size=20_000))
    for shift in (0.0, 0.2, 0.5):
        current = np.sort(rng.normal(shift, 1.0, size=3_000))
        exact = measures.ks_samples(baseline, current)
        summary = measures.ks_quantiles(np.quantile(baseline, np.linspace(0, 1, 101)), current)
        assert abs(summary - exact) <= 0.01


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=12))
def test_psi_matches_the_reference(pairs: list[tuple[float, float]]) -> None:
    expected, actual = [p for p, _ in pairs], [q for _, q in pairs]
    got = measures.population_stability_index(np.asarray(expected), np.asarray(actual))
    assert got == pytest.approx(reference_psi(expected, actual, measures.PSI_EPSILON))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=12)
       .filter(lambda pairs: sum(p for p, _ in pairs) > 0 and sum(q for _, q in pairs) > 0))
def test_linf_and_js_match_the_reference(pairs: list[tuple[int, int]]) -> None:
    p, q = measures.aligned_frequencies(np.asarray([a for a, _ in pairs]),
                                        np.asarray([b for _, b in pairs]))
    reference_p = [a / sum(a for a, _ in pairs) for a, _ in pairs]
    reference_q = [b / sum(b for _, b in pairs) for _, b in pairs]
    assert measures.linf_distance(p, q) == pytest.approx(
        max(abs(x - y) for x, y in zip(reference_p, reference_q, strict=True)))
    js = measures.js_divergence(p, q)
    assert js == pytest.approx(reference_js(reference_p, reference_q), abs=1e-12)
    assert -1e-12 <= js <= 1 + 1e-12


def test_js_is_one_bit_for_disjoint_values_and_zero_for_equal_ones() -> None:
    assert measures.js_divergence(np.asarray([1.0, 0.0]), np.asarray([0.0, 1.0])) == 1.0
    assert measures.js_divergence(np.asarray([0.3, 0.7]), np.asarray([0.3, 0.7])) == 0.0


def test_equal_deciles_merge_into_one_bin() -> None:
    edges = measures.decile_edges(np.asarray([0, 0, 0, 0, 1, 2, 2, 3, 4], np.float64))
    assert edges.tolist() == [0, 1, 2, 3, 4]
    fractions = measures.bin_fractions(np.asarray([0.0, 0.45, 0.6, 0.8, 0.9]))
    assert fractions.tolist() == pytest.approx([0.0, 0.45, 0.15, 0.2, 0.1, 0.1])


def _numeric(baseline: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    baseline, current = np.sort(baseline), np.sort(current)
    edges = measures.decile_edges(np.quantile(baseline, measures.DECILE_LEVELS))
    psi = measures.population_stability_index(
        measures.bin_fractions(measures.sample_cdf(baseline, edges, False)),
        measures.bin_fractions(measures.sample_cdf(current, edges, False)))
    return psi, measures.ks_samples(baseline, current)


def test_a_shifted_mean_is_flagged_and_a_resample_is_not() -> None:
    rng = np.random.default_rng(13)
    baseline = rng.normal(10.0, 2.0, size=5_000)
    psi, ks = _numeric(baseline, rng.normal(10.0, 2.0, size=5_000))
    assert psi < PSI_THRESHOLD / 4 and ks < KS_THRESHOLD / 2
    # Half a deviation: KS about 0.2; the PSI of a normal shifted by d deviations is
    # about d squared, 0.25 here, near its threshold.
    psi, ks = _numeric(baseline, rng.normal(11.0, 2.0, size=5_000))
    assert ks > KS_THRESHOLD and psi > PSI_THRESHOLD * 0.8
    psi, ks = _numeric(baseline, rng.normal(11.5, 2.0, size=5_000))
    assert psi > PSI_THRESHOLD and ks > KS_THRESHOLD


def _categorical(baseline: list[str], current: list[str]) -> tuple[float, float]:
    keys = sorted({*baseline, *current})
    p, q = measures.aligned_frequencies(np.asarray([baseline.count(k) for k in keys]),
                                        np.asarray([current.count(k) for k in keys]))
    return measures.linf_distance(p, q), measures.js_divergence(p, q)


def test_changed_category_frequencies_are_flagged_and_a_resample_is_not() -> None:
    rng = np.random.default_rng(17)
    values = ["grocery", "travel", "fuel", "online", "dining"]
    before = [0.4, 0.25, 0.15, 0.1, 0.1]
    baseline = list(rng.choice(values, size=4_000, p=before))
    linf, js = _categorical(baseline, list(rng.choice(values, size=4_000, p=before)))
    assert linf < LINF_THRESHOLD and js < JS_THRESHOLD
    after = [0.1, 0.15, 0.1, 0.55, 0.1]
    linf, js = _categorical(baseline, list(rng.choice(values, size=4_000, p=after)))
    assert linf > LINF_THRESHOLD and js > JS_THRESHOLD
