"""Plain-data definitions that the compiler takes as input.

`transforms` knows nothing of registry files, DuckDB or Redis: the caller (the
registry layer) translates its validated models into these frozen dataclasses.
All times are integers in microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MICROSECONDS = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


class ColumnType(StrEnum):
    """Logical type of a source column or request field, as the kernels see it."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    TIMESTAMP = "timestamp"


AGGREGATIONS = ("count", "sum", "mean", "min", "max", "std", "first", "last", "decayed_sum",
                "decayed_count", "last_n", "first_n", "top_k", "approx_count_distinct",
                "approx_percentile")


def default_hop(window_us: int) -> int:
    """Default hop for a window (DESIGN 4.2): <12h → 5m, <12d → 1h, else 1d."""
    if window_us < 12 * MICROSECONDS["h"]:
        return 5 * MICROSECONDS["m"]
    if window_us < 12 * MICROSECONDS["d"]:
        return MICROSECONDS["h"]
    return MICROSECONDS["d"]


@dataclass(frozen=True)
class FeatureSpec:
    """One aggregation feature of a feature view.

    Attributes:
        name: feature name, unique within its view.
        agg: one of AGGREGATIONS.
        expr: expression over source columns; None means "the event itself"
            (only valid for `count`).
        window_us: window length in microseconds; None for a lifetime aggregation.
        hop_us: hop in microseconds (the tail's step); None for lifetime.
        n: how many values `last_n` / `first_n` keep.
        k: how many values `top_k` returns.
        half_life_us: the half-life of `decayed_sum` / `decayed_count`, in microseconds.
        precision: the HyperLogLog precision of `approx_count_distinct` (None: default).
        q: the quantiles `approx_percentile` gives, each in [0, 1].
    """

    name: str
    agg: str
    expr: str | None
    window_us: int | None
    hop_us: int | None
    n: int | None = None
    k: int | None = None
    half_life_us: int | None = None
    precision: int | None = None
    q: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ViewSpec:
    """A feature view: aggregations over one source, keyed by one entity."""

    name: str
    source: str
    keys: tuple[str, ...]
    timestamp: str
    features: tuple[FeatureSpec, ...]


@dataclass(frozen=True)
class RequestViewSpec:
    """A request view: expressions over request fields and view features.

    Attributes:
        request: (field name, ColumnType) pairs given at request time.
        features: (feature name, expression) pairs; expressions may name request
            fields and `view.feature` references.
    """

    name: str
    request: tuple[tuple[str, ColumnType], ...]
    features: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class GraphSpec:
    """Everything the compiler needs: views, request views and source schemas."""

    views: tuple[ViewSpec, ...]
    request_views: tuple[RequestViewSpec, ...]
    # source name -> ((column, ColumnType), ...)
    schemas: tuple[tuple[str, tuple[tuple[str, ColumnType], ...]], ...]

    def schema(self, source: str) -> dict[str, ColumnType]:
        """Column types of one source."""
        for name, columns in self.schemas:
            if name == source:
                return dict(columns)
        raise KeyError(source)
