"""Distances between two distributions of one feature (numpy in, floats out).

The measures are TensorFlow Data Validation's: for numbers, the population stability
index over the baseline's deciles and the Kolmogorov-Smirnov distance; for categories,
the L-infinity distance and the Jensen-Shannon divergence. Nulls never reach this module:
callers pass the non-null values only.

A numeric distribution is known either as a whole sample (sorted values), or as its
quantiles at evenly spaced levels 0, 1/n, ..., 1 (a fitted artifact keeps 101 of them).
Either way it is handled through its cumulative distribution function:

- of a sample, the empirical one, exact;
- of quantiles, the piecewise linear function through the points (quantile_i, i/n),
  which is what numpy's linear interpolation between order statistics inverts. A run of
  equal quantiles (a value that many rows hold) is a jump at that value. Its error is
  at most one level step (0.01 with 101 quantiles) away from the sample's.

This module imports nothing from the rest of the project, so every function can be
checked against a plain-Python reference.
"""

from __future__ import annotations

import numpy as np

PSI_EPSILON = 1e-4
"""The fraction an empty bin counts as in the PSI, so that its logarithm is finite: one
row in ten thousand, small enough not to hide a real shift, large enough that one empty
bin alone adds at most about 0.1 × ln(0.1 / 1e-4) ≈ 0.69."""

DECILE_LEVELS = np.linspace(0.1, 0.9, 9)
"""The inner edges of the PSI's ten bins, as quantile levels of the baseline."""


def sample_cdf(sorted_values: np.ndarray, points: np.ndarray, inclusive: bool) -> np.ndarray:
    """The empirical distribution function of a sample at `points`.

    Args:
        sorted_values: the sample, sorted ascending (non-empty, no NaN).
        points: where to evaluate it.
        inclusive: the fraction of values `<=` each point (True) or `<` it (False).
    """
    side = "right" if inclusive else "left"
    return np.searchsorted(sorted_values, points, side=side) / len(sorted_values)


def quantile_cdf(quantiles: np.ndarray, points: np.ndarray, inclusive: bool) -> np.ndarray:
    """The distribution function that quantiles at evenly spaced levels describe.

    Between two distinct quantiles the function is linear; where several quantiles are
    equal it jumps at their value (module docstring).

    Args:
        quantiles: quantiles at levels 0, 1/n, ..., 1 (n + 1 values, non-decreasing).
        points: where to evaluate it.
        inclusive: the fraction `<=` each point (True) or `<` it (False); they differ only
            at a jump.
    """
    q = np.asarray(quantiles, np.float64)
    x = np.asarray(points, np.float64)
    step = 1.0 / (len(q) - 1)
    if inclusive:
        # The last quantile <= x, and the linear part after it up to the next one.
        last = np.searchsorted(q, x, side="right") - 1
        inner = np.clip(last, 0, len(q) - 2)
        gap = q[inner + 1] - q[inner]
        # A subnormal gap can overflow the ratio to inf: clipped to 1 below, as meant.
        with np.errstate(over="ignore"):
            offset = np.divide(x - q[inner], gap, out=np.zeros_like(x), where=gap > 0)
        value = (inner + np.clip(offset, 0.0, 1.0)) * step
        return np.where(last < 0, 0.0, np.where(last >= len(q) - 1, 1.0, value))
    # The first quantile >= x, and the linear part before it from the previous one.
    first = np.searchsorted(q, x, side="left")
    inner = np.clip(first, 1, len(q) - 1)
    gap = q[inner] - q[inner - 1]
    with np.errstate(over="ignore"):  # as above: inf is clipped to 1
        offset = np.divide(x - q[inner - 1], gap, out=np.zeros_like(x), where=gap > 0)
    value = (inner - 1 + np.clip(offset, 0.0, 1.0)) * step
    return np.where(first <= 0, 0.0, np.where(first >= len(q), 1.0, value))


def decile_edges(deciles: np.ndarray) -> np.ndarray:
    """The inner bin edges of the PSI: the baseline's deciles (levels 0.1 to 0.9), equal
    ones merged, so a value many rows share makes one wider bin rather than empty ones."""
    return np.unique(np.asarray(deciles, np.float64))


def bin_fractions(below_edges: np.ndarray) -> np.ndarray:
    """The fraction in each bin (-inf, e1), [e1, e2), ..., [ek, inf), from the fraction of
    values below each edge."""
    cumulative = np.concatenate([[0.0], np.asarray(below_edges, np.float64), [1.0]])
    return np.diff(cumulative)


def population_stability_index(baseline: np.ndarray, current: np.ndarray,
                               epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum over bins of (c - b) * ln(c / b), each fraction at least `epsilon`.

    Args:
        baseline: the baseline's fraction per bin.
        current: the current fraction per bin, same bins.
        epsilon: the least fraction a bin counts as (PSI_EPSILON).
    """
    b = np.maximum(np.asarray(baseline, np.float64), epsilon)
    c = np.maximum(np.asarray(current, np.float64), epsilon)
    return float(np.sum((c - b) * np.log(c / b)))


def ks_samples(baseline: np.ndarray, current: np.ndarray) -> float:
    """The Kolmogorov-Smirnov distance sup |F_b - F_c| of two sorted samples, exact.

    Both functions are steps that change only at sample values, so the supremum is
    reached at one of them (evaluated including the value).
    """
    points = np.concatenate([baseline, current])
    difference = sample_cdf(baseline, points, True) - sample_cdf(current, points, True)
    return float(np.max(np.abs(difference)))


def ks_quantiles(quantiles: np.ndarray, current: np.ndarray) -> float:
    """The Kolmogorov-Smirnov distance between the distribution quantiles describe
    (`quantile_cdf`) and a sorted sample: exact for that piecewise linear function.

    Between consecutive points of either the difference is linear, so its supremum is
    at a point, taken either including the point or just before it.
    """
    points = np.concatenate([np.asarray(quantiles, np.float64), current])
    at = quantile_cdf(quantiles, points, True) - sample_cdf(current, points, True)
    before = quantile_cdf(quantiles, points, False) - sample_cdf(current, points, False)
    return float(max(np.max(np.abs(at)), np.max(np.abs(before))))


def aligned_frequencies(baseline_counts: np.ndarray,
                        current_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two count vectors over the same categories as probability vectors.

    A side with no counts at all gives zeros (its distance is then decided by the other).
    """
    b = np.asarray(baseline_counts, np.float64)
    c = np.asarray(current_counts, np.float64)
    return (b / b.sum() if b.sum() > 0 else b), (c / c.sum() if c.sum() > 0 else c)


def linf_distance(baseline: np.ndarray, current: np.ndarray) -> float:
    """max over categories of |p_b(v) - p_c(v)| (probability vectors, same categories)."""
    if len(baseline) == 0:
        return 0.0
    return float(np.max(np.abs(np.asarray(baseline) - np.asarray(current))))


def js_divergence(baseline: np.ndarray, current: np.ndarray) -> float:
    """The Jensen-Shannon divergence in bits (log base 2, so between 0 and 1):
    (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2, where 0 log 0 = 0."""
    p = np.asarray(baseline, np.float64)
    q = np.asarray(current, np.float64)
    m = (p + q) / 2
    return float((_kl_bits(p, m) + _kl_bits(q, m)) / 2)


def _kl_bits(p: np.ndarray, m: np.ndarray) -> float:
    # Where p > 0, m >= p / 2 > 0: the ratio is finite.
    present = p > 0
    return float(np.sum(p[present] * np.log2(p[present] / m[present])))
