"""Compare two sides' profiles feature by feature, against the registry's thresholds.

Numeric features get the population stability index over the baseline's deciles (equal
deciles merged) and the Kolmogorov-Smirnov distance; categorical ones the L-infinity
distance and the Jensen-Shannon divergence (`measures.py`). A feature has drifted when
any of its measures is above its threshold, or when one side has values and the other
none (a feature that went all null is the drift most worth catching).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from featurestore.drift import measures
from featurestore.drift.profiles import CategoricalProfile, NumericProfile, Profile
from featurestore.errors import InputError
from featurestore.registry.drift_settings import DriftSettings


@dataclass(frozen=True)
class FeatureDrift:
    """One feature compared.

    Attributes:
        feature: its name (the bare feature name, or `view:feature` where two views
            share it).
        kind: "numeric" or "categorical".
        baseline_rows, current_rows: rows on each side, nulls included.
        baseline_nulls, current_nulls: null rows on each side.
        measures: measure key → value (empty when a side has no values).
        thresholds: measure key → its threshold.
        drifted: whether a measure is over its threshold, or only one side has values.
    """

    feature: str
    kind: str
    baseline_rows: int
    baseline_nulls: int
    current_rows: int
    current_nulls: int
    measures: Mapping[str, float]
    thresholds: Mapping[str, float]
    drifted: bool

    @property
    def over(self) -> tuple[str, ...]:
        """The measures above their thresholds."""
        return tuple(key for key, value in self.measures.items()
                     if value > self.thresholds[key])

    def note(self) -> str | None:
        """Why the measures are missing, if they are."""
        if self.measures:
            return None
        sides = [side for side, rows, nulls in (
            ("baseline", self.baseline_rows, self.baseline_nulls),
            ("current", self.current_rows, self.current_nulls)) if rows == nulls]
        return f"no values in the {' or the '.join(sides)}"

    def render(self, width: int = 0) -> str:
        """One line: the name (padded to `width`), the measures against their thresholds,
        the null fractions and the verdict."""
        shown = "  ".join(f"{key} {value:.4f} (> {self.thresholds[key]:g})"
                          if value > self.thresholds[key] else
                          f"{key} {value:.4f} (<= {self.thresholds[key]:g})"
                          for key, value in self.measures.items()) or self.note()
        nulls = (f"nulls {_fraction(self.baseline_nulls, self.baseline_rows)} -> "
                 f"{_fraction(self.current_nulls, self.current_rows)}")
        return f"{self.feature.ljust(width)}  {self.kind:<11}  {shown}  {nulls}  " + (
            "DRIFT" if self.drifted else "ok")

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-compatible values."""
        return {"feature": self.feature, "kind": self.kind, "measures": dict(self.measures),
                "thresholds": dict(self.thresholds), "over": list(self.over),
                "drifted": self.drifted,
                "baseline": _side(self.baseline_rows, self.baseline_nulls),
                "current": _side(self.current_rows, self.current_nulls)}


@dataclass(frozen=True)
class DriftReport:
    """Every compared feature of a baseline and a current side.

    Attributes:
        baseline: what the baseline is (`training set 'jan' (2,000 rows)`).
        current: what the current side is.
        features: the compared features, in the baseline's order.
        left_out: features of the registry found on one side only, with the side.
    """

    baseline: str
    current: str
    features: tuple[FeatureDrift, ...]
    left_out: tuple[str, ...] = ()

    @property
    def drifted(self) -> tuple[str, ...]:
        """The names of the features that drifted (empty: none did)."""
        return tuple(feature.feature for feature in self.features if feature.drifted)

    def render(self) -> str:
        """What the command line prints: a heading, one line per feature, a verdict."""
        lines = [f"drift of {self.current} against {self.baseline}"]
        width = max((len(feature.feature) for feature in self.features), default=0)
        lines += [f"  {feature.render(width)}" for feature in self.features]
        if self.left_out:
            lines.append(f"  not compared (on one side only): {', '.join(self.left_out)}")
        drifted = self.drifted
        lines.append(f"{len(drifted)} of {len(self.features)} features drifted"
                     + (f": {', '.join(drifted)}" if drifted else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-compatible values (what `--json` prints)."""
        return {"baseline": self.baseline, "current": self.current,
                "drifted": list(self.drifted),
                "features": [feature.to_dict() for feature in self.features],
                "left_out": list(self.left_out)}


def compare_profiles(name: str, baseline: Profile, current: Profile,
                     settings: DriftSettings) -> FeatureDrift:
    """Compare one feature's two profiles.

    Raises:
        InputError: one side numeric and the other categorical (both with values).
    """
    if baseline.count == 0 or current.count == 0:
        kind = baseline.kind if baseline.count else current.kind
        return _result(name, kind, baseline, current, {}, {},
                       drifted=baseline.count != current.count)
    if baseline.kind != current.kind:
        raise InputError(f"feature '{name}' is {baseline.kind} in the baseline and "
                         f"{current.kind} in the current data: they cannot be compared")
    if isinstance(baseline, NumericProfile) and isinstance(current, NumericProfile):
        found = {"psi": _psi(baseline, current), "ks": _ks(baseline, current)}
    else:
        assert isinstance(baseline, CategoricalProfile)
        assert isinstance(current, CategoricalProfile)
        p, q = _aligned(baseline, current)
        found = {"linf": measures.linf_distance(p, q), "js": measures.js_divergence(p, q)}
    thresholds = {key: settings.threshold(key) for key in found}
    drifted = any(value > thresholds[key] for key, value in found.items())
    return _result(name, baseline.kind, baseline, current, found, thresholds, drifted)


def _result(name: str, kind: str, baseline: Profile, current: Profile,
            found: dict[str, float], thresholds: dict[str, float],
            drifted: bool) -> FeatureDrift:
    return FeatureDrift(name, kind, baseline.rows, baseline.nulls, current.rows,
                        current.nulls, found, thresholds, drifted)


def _psi(baseline: NumericProfile, current: NumericProfile) -> float:
    edges = measures.decile_edges(baseline.deciles())
    expected = measures.bin_fractions(baseline.cdf(edges, inclusive=False))
    actual = measures.bin_fractions(current.cdf(edges, inclusive=False))
    return measures.population_stability_index(expected, actual)


def _ks(baseline: NumericProfile, current: NumericProfile) -> float:
    if baseline.values is not None and current.values is not None:
        return measures.ks_samples(baseline.values, current.values)
    if baseline.quantiles is not None and current.values is not None:
        return measures.ks_quantiles(baseline.quantiles, current.values)
    raise InputError("the current side of a drift comparison must be data, not a fit")


def _aligned(baseline: CategoricalProfile,
             current: CategoricalProfile) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' frequencies over the union of their values; when the baseline's
    summary left values out, current values it does not know count as those."""
    values = list(dict.fromkeys([*baseline.counts, *current.counts]))
    if baseline.other:
        values = list(baseline.counts)
        unknown = sum(count for value, count in current.counts.items()
                      if value not in baseline.counts)
        b = [*baseline.counts.values(), baseline.other]
        c = [*(current.counts.get(value, 0) for value in values), unknown]
    else:
        b = [baseline.counts.get(value, 0) for value in values]
        c = [current.counts.get(value, 0) for value in values]
    return measures.aligned_frequencies(np.asarray(b), np.asarray(c))


def _side(rows: int, nulls: int) -> dict[str, Any]:
    return {"rows": rows, "nulls": nulls, "null_fraction": nulls / rows if rows else None}


def _fraction(nulls: int, rows: int) -> str:
    return f"{nulls / rows:.1%}" if rows else "-"

