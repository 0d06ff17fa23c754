"""Statistics of sources, training sets and materialized views (`featurestore stats`).

`model` holds the typed result, `profile` the one-pass DuckDB statement, `targets` what
an input is read from, `history` the statistics each materialization stores, and
`compute` puts them together for the SDK.
"""

from featurestore.statistics.model import (
    ColumnStatistics,
    DatasetStatistics,
    HistogramBin,
    TopValue,
)

__all__ = ["ColumnStatistics", "DatasetStatistics", "HistogramBin", "TopValue"]
