"""Spines: the rows a training set is built for (entity keys, a time, anything else).

A spine arrives as pandas, polars, Arrow or a Parquet path and leaves as an Arrow table
with every column and row in the user's order. The only change is to the timestamp
column, normalised to microseconds UTC (see `timestamps.normalize_timestamps`); nothing
is added, so a row number, if needed, is kept alongside rather than in the table.

A row whose entity key is null (None, NaN, NA) names no entity: rather than failing the
whole training set, it gets the features of an unseen entity (DESIGN §4.3) and the
caller is warned how many rows did (`present_rows` tells them apart).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.errors import FeatureStoreWarning, InputError
from featurestore.loaded_pandas import is_dataframe
from featurestore.offline.timestamps import epoch_micros, normalize_timestamps

if TYPE_CHECKING:
    import pandas as pd


def _read_parquet(path: str | os.PathLike[str]) -> pa.Table:
    location = Path(path)
    if not location.exists():
        raise InputError(f"spine file not found: {location}")
    try:
        if location.is_file():
            # `read_table` goes through pyarrow.dataset, whose import loads pandas: most
            # of a second on a first call. One file needs neither.
            with pq.ParquetFile(location) as file:
                return file.read()
        return pq.read_table(location)  # a folder of Parquet files
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"spine file {location} is not readable Parquet: {error}") from error


def _from_pandas(frame: pd.DataFrame) -> pa.Table:
    try:
        # The index is not a spine column; row order is what identifies rows.
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
        raise InputError(f"spine cannot be converted to Arrow: {error}") from error


def to_arrow(spine: object) -> pa.Table:
    """Any accepted spine form as an Arrow table, unvalidated.

    Raises:
        InputError: the object is none of the accepted forms, or cannot be read.
    """
    if isinstance(spine, pa.Table):
        return spine
    if isinstance(spine, pa.RecordBatch):
        return pa.Table.from_batches([spine])
    if is_dataframe(spine):
        return _from_pandas(spine)
    if isinstance(spine, (str, os.PathLike)):
        return _read_parquet(spine)
    # polars is optional: recognise its DataFrame without importing it.
    if type(spine).__module__.split(".")[0] == "polars" and hasattr(spine, "to_arrow"):
        return spine.to_arrow()
    raise InputError(
        f"spine must be a pandas or polars DataFrame, an Arrow table, or a Parquet path; "
        f"got {type(spine).__name__}"
    )


def present_rows(keys: pa.Table) -> np.ndarray:
    """Bool per row: True where every column of `keys` holds a value (not null, not NaN)."""
    present = np.ones(keys.num_rows, dtype=bool)
    for column in keys.columns:
        if column.null_count or pa.types.is_floating(column.type):
            missing = pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
            present &= ~missing
    return present


def _warn_null_keys(table: pa.Table, keys: Sequence[str]) -> None:
    for name in keys:
        nulls = int((~present_rows(table.select([name]))).sum())
        if nulls:
            rows = "1 spine row has" if nulls == 1 else f"{nulls} spine rows have"
            they = "it gets" if nulls == 1 else "they get"
            # Point at the caller: here ← load_spine ← build_training_set ← FeatureStore.
            warnings.warn(f"{rows} a null {name}: {they} the features of an unseen entity",
                          FeatureStoreWarning, stacklevel=5)


def _check_column(table: pa.Table, name: str, role: str) -> None:
    matches = table.column_names.count(name)
    if matches == 0:
        raise InputError(
            f"spine has no column '{name}' ({role}); its columns: "
            f"{', '.join(table.column_names) or '(none)'}"
        )
    if matches > 1:
        raise InputError(f"spine has {matches} columns named '{name}' ({role})")
    nulls = table.column(name).null_count
    if nulls and role == "timestamp":
        first = pc.index(pc.is_null(table.column(name)), True).as_py()
        raise InputError(
            f"spine column '{name}' ({role}) has {nulls} null values (first at row {first}); "
            "every row needs its timestamp"
        )


def load_spine(spine: object, keys: Sequence[str], timestamp: str) -> pa.Table:
    """Read and validate a spine.

    Args:
        spine: a pandas or polars DataFrame, an Arrow table, or a Parquet path.
        keys: the entity key columns it must hold.
        timestamp: the time column it must hold.

    Returns:
        The spine as an Arrow table: same columns, same rows, same order; the timestamp
        column normalised to microseconds (naive stays naive = UTC, tz-aware becomes
        UTC, ISO-8601 strings are parsed).

    Warns:
        FeatureStoreWarning: once per key column with nulls, saying how many rows get
            the features of an unseen entity.

    Raises:
        InputError: the spine cannot be read; a key or the timestamp column is missing
            or duplicated; the timestamp column has nulls, is not a time or does not
            parse. The message names the column.
    """
    table = to_arrow(spine)
    for name in keys:
        _check_column(table, name, "entity key")
    _warn_null_keys(table, keys)
    _check_column(table, timestamp, "timestamp")
    position = table.column_names.index(timestamp)
    normalized = normalize_timestamps(table.column(position), f"spine column '{timestamp}'")
    field = table.schema.field(position).with_type(normalized.type)
    return table.set_column(position, field, normalized)


def spine_micros(table: pa.Table, timestamp: str) -> np.ndarray:
    """The spine times of a loaded spine as int64 microseconds since the epoch, UTC."""
    return epoch_micros(table.column(timestamp))
