"""Profiles: what drift knows of one feature's values on one side of a comparison.

A profile is built from a column (an Arrow array: a training set's column, a file's, the
values a server logged) and is either numeric or categorical, by the column's type:

- numbers (integers, floats, decimals) and timestamps (as microseconds) are numeric;
  a sample keeps its sorted non-null values;
- strings and booleans (`true`/`false`) are categorical: the count of each value.

A fitted artifact cannot keep its training set, so it keeps a summary (`summary`,
read back by `profile_of_summary`): a numeric feature's exact quantiles at levels
0, 0.01, ..., 1 (101 points, numpy's linear interpolation), a categorical feature's
1,000 most frequent values and one count of all the others. Both keep the rows and the
nulls. Nulls never enter a distribution; their fraction is reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.drift.measures import DECILE_LEVELS, quantile_cdf, sample_cdf
from featurestore.errors import InputError

if TYPE_CHECKING:
    from featurestore.offline.training_output import FeatureColumn

QUANTILE_POINTS = 101
"""Quantiles a fitted artifact keeps of a numeric feature: levels 0, 0.01, ..., 1."""

TOP_VALUES = 1000
"""Values a fitted artifact keeps of a categorical feature; the rest are one count."""

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """A numeric feature's values: a sample, or quantiles when only a summary is kept.

    Attributes:
        rows: rows, nulls included.
        nulls: null rows.
        values: the sorted non-null values (None for a summary).
        quantiles: QUANTILE_POINTS quantiles of the non-null values (None for a sample,
            empty when there are no values).
    """

    rows: int
    nulls: int
    values: np.ndarray | None = None
    quantiles: np.ndarray | None = None
    kind: str = NUMERIC

    @property
    def count(self) -> int:
        """Non-null rows."""
        return self.rows - self.nulls

    def deciles(self) -> np.ndarray:
        """The quantiles at levels 0.1, ..., 0.9."""
        if self.values is not None:
            return np.quantile(self.values, DECILE_LEVELS)
        assert self.quantiles is not None
        steps = len(self.quantiles) - 1
        return self.quantiles[np.rint(DECILE_LEVELS * steps).astype(np.int64)]

    def cdf(self, points: np.ndarray, inclusive: bool) -> np.ndarray:
        """The fraction of values `<=` (inclusive) or `<` each point."""
        if self.values is not None:
            return sample_cdf(self.values, points, inclusive)
        assert self.quantiles is not None
        return quantile_cdf(self.quantiles, points, inclusive)


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """A categorical feature's values, counted.

    Attributes:
        rows: rows, nulls included.
        nulls: null rows.
        counts: value (as text) → rows holding it.
        other: rows holding values a summary left out (0 for a sample).
    """

    rows: int
    nulls: int
    counts: dict[str, int]
    other: int = 0
    kind: str = CATEGORICAL

    @property
    def count(self) -> int:
        """Non-null rows."""
        return self.rows - self.nulls


Profile = NumericProfile | CategoricalProfile


def profile_column(name: str, column: pa.Array | pa.ChunkedArray) -> Profile:
    """The profile of a column (module docstring); a column of nulls only (Arrow's null
    type, as JSON nulls give) is numeric with no values.

    Raises:
        InputError: a type that is neither numeric nor categorical (lists, structs,
            binary), naming the column.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    rows, nulls = len(column), column.null_count
    if pa.types.is_null(kind):
        return NumericProfile(rows, nulls, values=np.empty(0))
    if pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        present = column.drop_null()
        if pa.types.is_boolean(kind):
            present = pc.if_else(present, "true", "false")
        counted = pc.value_counts(present)
        counts = dict(zip(counted.field("values").to_pylist(),
                          counted.field("counts").to_pylist(), strict=True))
        return CategoricalProfile(rows, nulls, counts)
    if pa.types.is_timestamp(kind):
        column = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
              or pa.types.is_decimal(kind)):
        raise InputError(f"feature '{name}' has values of type {kind}, neither numbers "
                         "nor categories (strings, booleans): drift cannot compare them")
    values = column.drop_null().cast(pa.float64()).to_numpy(zero_copy_only=False)
    # A float NaN is a null too (kernels write nulls as NaN).
    present = values[~np.isnan(values)]
    return NumericProfile(rows, rows - len(present), values=np.sort(present))


def profile_values(name: str, values: list[Any]) -> Profile:
    """The profile of JSON values (as a server logged them; None for null).

    Raises:
        InputError: values of mixed kinds (numbers and strings) or of no usable kind.
    """
    try:
        column = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise InputError(f"feature '{name}' has values of mixed types: {error}") from None
    return profile_column(name, column)


def summary(profile: Profile) -> dict[str, Any]:
    """What a fitted artifact keeps of a profile (JSON-compatible; module docstring)."""
    if isinstance(profile, CategoricalProfile):
        ranked = sorted(profile.counts.items(), key=lambda item: (-item[1], item[0]))
        kept = dict(ranked[:TOP_VALUES])
        other = profile.other + sum(count for _, count in ranked[TOP_VALUES:])
        return {"kind": CATEGORICAL, "rows": profile.rows, "nulls": profile.nulls,
                "counts": kept, "other": other}
    if profile.values is not None:
        quantiles = (np.quantile(profile.values, np.linspace(0, 1, QUANTILE_POINTS))
                     if len(profile.values) else np.empty(0))
    else:
        quantiles = profile.quantiles
    return {"kind": NUMERIC, "rows": profile.rows, "nulls": profile.nulls,
            "quantiles": [float(q) for q in quantiles]}  # type: ignore[union-attr]


def profile_of_summary(stored: dict[str, Any]) -> Profile:
    """A profile read back from what `summary` returned."""
    if stored["kind"] == CATEGORICAL:
        return CategoricalProfile(int(stored["rows"]), int(stored["nulls"]),
                                  {str(k): int(v) for k, v in stored["counts"].items()},
                                  int(stored["other"]))
    return NumericProfile(int(stored["rows"]), int(stored["nulls"]),
                          quantiles=np.asarray(stored["quantiles"], np.float64))



def feature_summaries(columns: Mapping[tuple[str, str], FeatureColumn]) -> dict[str, Any]:
    """`view:feature` → the summary of its column: what a fit keeps for drift."""
    return {f"{view}:{feature}": summary(profile_column(column.name, column.to_arrow()))
            for (view, feature), column in columns.items()}
