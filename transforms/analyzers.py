"""Analyzers: the statistics of full-pass transforms, fitted over a whole column.

Pure numpy. A column arrives as a `FitColumn`: numbers (float64, NaN for null) or
categories (the distinct values as text, and each row's code into them, NaN for null).
Quantiles are exact: numpy's default linear interpolation between the order statistics
of the non-null values (the same as pandas' `Series.quantile`). Standard deviations are
the population's (ddof 0, as scikit-learn's StandardScaler). A zero scale (std, range or
IQR) is stored as 1, so that constant data maps to 0 rather than to NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from transforms.errors import FitError
from transforms.fitted_functions import TransformSpec
from transforms.spec import ColumnType


@dataclass(frozen=True)
class Categories:
    """A column as categories: distinct values in their natural order, and codes.

    Attributes:
        keys: the distinct values as text (integers in decimal), sorted as the values
            sort (numerically for integers).
        codes: per row, the index into `keys` (float64, NaN for null).
    """

    keys: tuple[str, ...]
    codes: np.ndarray

    @staticmethod
    def of_numbers(values: np.ndarray) -> Categories:
        """Categories of an integer column (float64, NaN for null)."""
        present = ~np.isnan(values)
        distinct, inverse = np.unique(values[present], return_inverse=True)
        codes = np.full(len(values), np.nan)
        codes[present] = inverse
        return Categories(tuple(str(int(value)) for value in distinct), codes)

    @staticmethod
    def of_strings(codes: np.ndarray, dictionary: Sequence[str]) -> Categories:
        """Categories of a string column held as codes into `dictionary` (NaN null):
        only the values that occur are kept, in text order."""
        present = ~np.isnan(codes)
        used = np.unique(codes[present]).astype(np.int64)
        texts = [dictionary[index] for index in used]
        order = sorted(range(len(texts)), key=texts.__getitem__)
        # Old code → new code: the position of its text in sorted order.
        remap = np.empty(len(used), np.float64)
        remap[order] = np.arange(len(order), dtype=np.float64)
        new_codes = np.full(len(codes), np.nan)
        new_codes[present] = remap[np.searchsorted(used, codes[present].astype(np.int64))]
        return Categories(tuple(texts[i] for i in order), new_codes)


@dataclass
class FitColumn:
    """One input column of the analyzers, with what they derive from it, computed once
    however many transforms read it.

    Attributes:
        name: the column, for messages.
        kind: its type.
        numbers: float64 values, NaN for null (None for strings).
        categories: the column as categories (strings always; integers on demand).
    """

    name: str
    kind: ColumnType
    numbers: np.ndarray | None = None
    given_categories: Categories | None = None
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @cached_property
    def rows(self) -> int:
        """Rows, nulls included."""
        source = self.numbers if self.numbers is not None else self.categories.codes
        return len(source)

    @cached_property
    def sorted_values(self) -> np.ndarray:
        """The non-null numbers, sorted."""
        assert self.numbers is not None
        return np.sort(self.numbers[~np.isnan(self.numbers)])

    @cached_property
    def categories(self) -> Categories:
        """The column as categories."""
        if self.given_categories is not None:
            return self.given_categories
        assert self.numbers is not None
        return Categories.of_numbers(self.numbers)

    @cached_property
    def category_counts(self) -> np.ndarray:
        """Rows per category, in key order."""
        codes = self.categories.codes
        present = codes[~np.isnan(codes)].astype(np.int64)
        return np.bincount(present, minlength=len(self.categories.keys))

    def quantiles(self, levels: Sequence[float]) -> list[float]:
        """Exact quantiles of the non-null numbers (linear interpolation)."""
        values = self._nonempty()
        return [float(q) for q in np.quantile(values, np.asarray(levels, np.float64))]

    def _nonempty(self) -> np.ndarray:
        if len(self.sorted_values) == 0:
            raise FitError(f"column '{self.name}' has no non-null values to fit on "
                           f"({self.rows} rows)")
        return self.sorted_values


Statistics = dict[str, object]
"""A transform's fitted statistics: JSON-compatible (numbers, text, lists)."""


def fit(spec: TransformSpec, column: FitColumn) -> Statistics:
    """Fit one transform's statistics on its input column.

    Raises:
        FitError: a numeric statistic over a column with no non-null values.
    """
    fn = spec.fn
    if fn == "zscore":
        values = column._nonempty()
        mean = float(np.mean(values))
        std = float(np.std(values))
        return {"mean": mean, "std": std, "scale": std or 1.0}
    if fn == "min_max":
        values = column._nonempty()
        low, high = float(values[0]), float(values[-1])
        return {"min": low, "max": high, "scale": (high - low) or 1.0}
    if fn == "robust_scale":
        p25, median, p75 = column.quantiles((0.25, 0.5, 0.75))
        return {"median": median, "p25": p25, "p75": p75, "scale": (p75 - p25) or 1.0}
    if fn == "quantile_bucket":
        buckets = int(spec.parameter("buckets"))  # type: ignore[call-overload]
        levels = [index / buckets for index in range(1, buckets)]
        return {"boundaries": column.quantiles(levels)}
    if fn == "clip_quantiles":
        low, high = spec.parameter("quantiles")  # type: ignore[misc]
        lower, upper = column.quantiles((low, high))
        return {"lower": lower, "upper": upper}
    if fn == "impute":
        return {"fill": _fill_value(spec, column)}
    if fn in ("vocabulary", "one_hot"):
        return _vocabulary(spec, column)
    return {}


def _fill_value(spec: TransformSpec, column: FitColumn) -> object:
    strategy = spec.parameter("strategy")
    if strategy == "constant":
        return spec.parameter("value")
    if strategy == "mean":
        return float(np.mean(column._nonempty()))
    if strategy == "median":
        return column.quantiles((0.5,))[0]
    # most_frequent: ties go to the smallest value (text order for strings).
    if column.kind == ColumnType.STRING:
        counts = column.category_counts
        if len(counts) == 0:
            raise FitError(f"column '{column.name}' has no non-null values to fit on "
                           f"({column.rows} rows)")
        return column.categories.keys[int(np.argmax(counts))]
    distinct, counts = np.unique(column._nonempty(), return_counts=True)
    value = distinct[int(np.argmax(counts))]
    if column.kind == ColumnType.BOOL:
        return bool(value)
    if column.kind == ColumnType.INT:
        return int(value)
    return float(value)


def _vocabulary(spec: TransformSpec, column: FitColumn) -> Statistics:
    """The values seen at least `min_count` times, most frequent first (ties in the
    values' natural order), the first `top_k` of them."""
    counts = column.category_counts
    keys = column.categories.keys
    # A stable sort on -count keeps ties in key order, which is the natural order.
    order = np.argsort(-counts, kind="stable")
    minimum = int(spec.parameter("min_count"))  # type: ignore[call-overload]
    kept = [int(index) for index in order if counts[index] >= minimum]
    top_k = spec.parameter("top_k")
    if top_k is not None:
        kept = kept[: int(top_k)]  # type: ignore[call-overload]
    return {"values": [keys[index] for index in kept],
            "counts": [int(counts[index]) for index in kept]}
