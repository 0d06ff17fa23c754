"""Validation of pushed rows against a source's schema.

Rows arrive as a pandas or polars DataFrame, an Arrow table, a list of dicts (one per
row, as JSON gives them) or a dict of columns. They leave as an Arrow table with every
column of the source, in the source's order, in one canonical type per ColumnType; a
column the rows do not give is null. Conversions are exact or refused: 2.5 is not an
integer, 1 is not a boolean, 7 is not a string.

The timestamp column of a source with a `timestamp_unit` takes epoch integers in that
unit, as the source's own rows hold them, and also ISO-8601 text and datetimes, as every
other source's does; either way it is stored as a timestamp (docs/decisions.md, "Epoch
integer timestamps").
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.errors import InputError
from featurestore.loaded_pandas import is_pandas_null
from featurestore.offline.arrow_types import ARROW_TYPES, NAIVE_MICROS, is_text_type
from featurestore.offline.spine import to_arrow
from featurestore.offline.timestamps import normalize_timestamps
from featurestore.times import EPOCH_UNITS
from transforms.spec import ColumnType

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _Refused(ValueError):
    """One value does not convert to its column's type."""


def _is_null(value: Any) -> bool:
    if value is None or is_pandas_null(value):
        return True
    return isinstance(value, float) and math.isnan(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool | np.bool_):
        raise _Refused
    integral_float = (
        isinstance(value, Real) and math.isfinite(value) and float(value).is_integer()
    )
    if not (isinstance(value, Integral) or integral_float):
        raise _Refused
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _Refused
    return number


def _to_float(value: Any) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise _Refused
    return float(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise _Refused


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Refused


def _numpy_datetime(value: np.datetime64) -> dt.datetime:
    """A numpy datetime as a naive datetime (microseconds; NaT is refused)."""
    moment = value.astype("datetime64[us]").astype(dt.datetime)
    if not isinstance(moment, dt.datetime):
        raise _Refused
    return moment


def _to_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _Refused from None
    elif isinstance(value, np.datetime64):
        value = _numpy_datetime(value)
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise _Refused
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _epoch_converter(unit: str) -> Callable[[Any], dt.datetime]:
    """A converter taking an epoch integer in `unit`, or what `_to_timestamp` takes."""
    multiplier, divisor = EPOCH_UNITS[unit]

    def convert(value: Any) -> dt.datetime:
        if isinstance(value, str | dt.date | np.datetime64):
            return _to_timestamp(value)
        micros = _to_int(value) * multiplier // divisor  # floors, as sources do
        return _EPOCH + dt.timedelta(microseconds=micros)

    return convert


_EPOCH = dt.datetime(1970, 1, 1)
_CONVERTERS: dict[ColumnType, Callable[[Any], Any]] = {
    ColumnType.INT: _to_int,
    ColumnType.FLOAT: _to_float,
    ColumnType.BOOL: _to_bool,
    ColumnType.STRING: _to_string,
    ColumnType.TIMESTAMP: _to_timestamp,
}
_EXPECTED = {
    ColumnType.INT: "an integer",
    ColumnType.FLOAT: "a number",
    ColumnType.BOOL: "true or false",
    ColumnType.STRING: "a string",
    ColumnType.TIMESTAMP: "an ISO-8601 timestamp or a datetime",
}


def _python_column(values: Sequence[Any], name: str, kind: ColumnType, prefix: str,
                   unit: str | None = None) -> pa.Array:
    """Python values → an Arrow array of the column's type, refusing inexact conversions.

    `unit`: for a timestamp column of epoch integers, their unit.
    """
    convert = _epoch_converter(unit) if unit else _CONVERTERS[kind]
    expected = f"an integer (epoch {unit}), {_EXPECTED[kind]}" if unit else _EXPECTED[kind]
    converted = []
    for row, value in enumerate(values):
        if _is_null(value):
            converted.append(None)
            continue
        try:
            converted.append(convert(value))
        except (_Refused, OverflowError, ValueError):
            raise InputError(
                f"{prefix}row {row}: column '{name}' expects {expected}, "
                f"got {value!r} ({type(value).__name__})"
            ) from None
    try:
        return pa.array(converted, type=ARROW_TYPES[kind])
    except (pa.ArrowInvalid, OverflowError) as error:
        raise InputError(f"{prefix}column '{name}': {error}") from None


def _family_accepts(arrow_type: pa.DataType, kind: ColumnType) -> bool:
    if pa.types.is_null(arrow_type):
        return True
    if kind is ColumnType.INT:
        return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    if kind is ColumnType.FLOAT:
        return (
            pa.types.is_integer(arrow_type)
            or pa.types.is_floating(arrow_type)
            or pa.types.is_decimal(arrow_type)
        )
    if kind is ColumnType.BOOL:
        return pa.types.is_boolean(arrow_type)
    if kind is ColumnType.STRING:
        return is_text_type(arrow_type)
    return True  # timestamps: normalize_timestamps decides


def _epoch_column(values: pa.ChunkedArray, name: str, unit: str, prefix: str) -> pa.Array:
    """Epoch integers in `unit` (integer or integral float column) → naive timestamps."""
    try:
        integers = values.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _python_column(values.to_pylist(), name, ColumnType.TIMESTAMP, prefix, unit)
    multiplier, divisor = EPOCH_UNITS[unit]
    try:
        scaled = pc.multiply_checked(integers, multiplier).combine_chunks()
    except pa.ArrowInvalid:
        raise InputError(f"{prefix}column '{name}': epoch {unit} values out of range") from None
    nulls = scaled.is_null().to_numpy(zero_copy_only=False)
    # numpy's floor_divide floors, as sources do; Arrow's integer division truncates.
    micros = np.floor_divide(scaled.fill_null(0).to_numpy(), divisor)
    return pa.array(micros, pa.int64(), mask=nulls).cast(NAIVE_MICROS)


def _arrow_column(
    values: pa.ChunkedArray, name: str, kind: ColumnType, prefix: str, unit: str | None = None
) -> pa.ChunkedArray:
    """An Arrow column cast exactly to the column's type (`unit`: see `_python_column`)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    numeric = pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
    if unit is not None and numeric:
        return pa.chunked_array([_epoch_column(values, name, unit, prefix)])
    if not _family_accepts(values.type, kind):
        raise InputError(
            f"{prefix}column '{name}' has type {values.type}; the source's '{name}' is {kind}"
        )
    if kind is ColumnType.TIMESTAMP:
        # tz-aware UTC and naive UTC share their stored values: dropping the zone is exact.
        return normalize_timestamps(values, f"{prefix}column '{name}'").cast(NAIVE_MICROS)
    # A float column holds integers when pandas widened it for nulls; a cast would
    # truncate 2.5 silently, so any fractional or NaN value takes the per-value path,
    # which accepts NaN as null and names the first offending row.
    fractional = kind is ColumnType.INT and pa.types.is_floating(values.type)
    if fractional and pc.all(pc.equal(values, pc.floor(values))).as_py() is False:
        return pa.chunked_array([_python_column(values.to_pylist(), name, kind, prefix)])
    try:
        return values.cast(ARROW_TYPES[kind])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.chunked_array([_python_column(values.to_pylist(), name, kind, prefix)])


def _columns_of(rows: object, prefix: str) -> tuple[dict[str, Any], int]:
    """Column name → values (Python list or Arrow column), and the row count."""
    if isinstance(rows, Mapping):
        lengths = {name: len(values) for name, values in rows.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"{prefix}columns have different lengths: {lengths}")
        return {str(name): list(values) for name, values in rows.items()}, next(
            iter(lengths.values()), 0
        )
    if isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
        names: dict[str, None] = {}
        for row, record in enumerate(rows):
            if not isinstance(record, Mapping):
                raise InputError(f"{prefix}row {row} is a {type(record).__name__}, not a mapping")
            names.update(dict.fromkeys(map(str, record)))
        columns = {name: [record.get(name) for record in rows] for name in names}
        return columns, len(rows)
    try:
        table = to_arrow(rows)
    except InputError:
        raise InputError(
            f"{prefix}rows must be a DataFrame, an Arrow table, a list of dicts or a dict "
            f"of columns; got {type(rows).__name__}"
        ) from None
    if len(set(table.column_names)) != table.num_columns:
        raise InputError(f"{prefix}rows have duplicated column names")
    return {name: table.column(name) for name in table.column_names}, table.num_rows


def _check_names(
    columns: Mapping[str, Any], schema: Mapping[str, ColumnType], required: Sequence[str],
    prefix: str,
) -> None:  # fmt: skip
    for name in columns:
        if name not in schema:
            close = difflib.get_close_matches(name, list(schema), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InputError(
                f"{prefix}unknown column '{name}'{hint}; columns: {', '.join(schema)}"
            )
    for name in required:
        if name not in columns:
            raise InputError(f"{prefix}missing required column '{name}'")


def validate_rows(
    rows: object,
    schema: Mapping[str, ColumnType],
    timestamp: str,
    keys: Sequence[str] = (),
    *,
    source_name: str | None = None,
    timestamp_unit: str | None = None,
) -> pa.Table:
    """Check pushed rows against a source's schema and convert them to its types.

    Args:
        rows: a pandas or polars DataFrame, an Arrow table, a list of dicts, or a dict
            of equally long columns.
        schema: the source's schema (from `describe_source`).
        timestamp: the source's timestamp column (required, non-null).
        keys: entity key columns (required, non-null).
        source_name: named in error messages when given.
        timestamp_unit: the source's `timestamp_unit`: its timestamp column then also
            takes epoch integers in that unit.

    Returns:
        An Arrow table with every schema column in schema order (int64, float64, bool,
        string, or naive timestamp[us] holding UTC); absent columns are null.

    Raises:
        InputError: unknown column, missing required column, a null key or timestamp,
            or a value of the wrong type; the message names the row and the column.
    """
    prefix = f"push to '{source_name}': " if source_name else ""
    required = [timestamp, *(key for key in keys if key != timestamp)]
    for name in required:
        if name not in schema:
            raise ValueError(f"required column '{name}' is not in the source schema")
    columns, count = _columns_of(rows, prefix)
    # An empty push names no columns; it is valid (and there is nothing to store).
    _check_names(columns, schema, required if count else (), prefix)
    arrays: dict[str, pa.ChunkedArray | pa.Array] = {}
    for name, kind in schema.items():
        values = columns.get(name)
        unit = timestamp_unit if name == timestamp else None
        if values is None:
            arrays[name] = pa.nulls(count, type=ARROW_TYPES[kind])
        elif isinstance(values, list):
            arrays[name] = _python_column(values, name, kind, prefix, unit)
        else:
            arrays[name] = _arrow_column(values, name, kind, prefix, unit)
    for name in required:
        if arrays[name].null_count:
            row = pc.index(pc.is_null(arrays[name]), True).as_py()
            raise InputError(f"{prefix}row {row}: required column '{name}' is null")
    target = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in schema.items()])
    return pa.table(arrays, schema=target)
