"""Checking and converting what a lookup is given: entity keys, request fields, a time.

Values arrive from Python callers (lists, numpy arrays, pandas Series) or from JSON.
Conversions are exact or refused, as for pushed rows: an integer key given as "1" is an
error rather than a silent miss, a float field accepts ints but not booleans.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Collection, Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from featurestore.errors import InputError
from featurestore.serving.errors import RequestError
from featurestore.times import now_micros, to_micros
from transforms.spec import ColumnType

MAX_ENTITIES = 1000
"""Most entities (rows) one lookup may ask for; larger batches are split by the caller."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_PLAIN_NUMBERS = (float, int, type(None))
_KEY_KINDS = {ColumnType.INT: "an integer", ColumnType.STRING: "a string"}
_FIELD_KINDS = {
    ColumnType.INT: "an integer",
    ColumnType.FLOAT: "a number",
    ColumnType.BOOL: "true or false",
    ColumnType.TIMESTAMP: "an ISO-8601 timestamp",
    ColumnType.STRING: "a string",
}


def lookup_time(at: object) -> int:
    """The lookup time in microseconds since the epoch, UTC.

    Args:
        at: None (now), an ISO-8601 string (no offset = UTC) or a datetime (naive =
            UTC); see `featurestore.times.to_micros`.

    Raises:
        RequestError: anything else, such as a number or "today" (code ``invalid_time``).
    """
    if at is None:
        return now_micros()
    try:
        return to_micros(at, "at")
    except InputError as error:
        raise RequestError("invalid_time", str(error)) from None


def entity_columns(
    entities: object, key_types: Mapping[str, ColumnType], ignored: Collection[str] = ()
) -> tuple[dict[str, list[int | str]], int]:
    """Check entity key columns against the keys the features need.

    Args:
        entities: mapping of key column → list of values.
        key_types: the key columns needed, in output order → INT or STRING (the type of
            that column in the source).
        ignored: key columns that may be given although these features do not read
            them (the registry's other entity keys: a client may send the same
            entities whatever it asks for); they are left out of the answer.

    Returns:
        The key columns in `key_types` order as lists of Python ints and strs, and the
        number of entities.

    Raises:
        RequestError: not a mapping, a missing or unknown key column, a value of the
            wrong type, columns of different lengths, or more than MAX_ENTITIES.
    """
    if ignored and isinstance(entities, Mapping):
        entities = {name: values for name, values in entities.items()
                    if name in key_types or name not in ignored}
    _check_names(entities, key_types, "entities", "key columns", "entity key column",
                 ("invalid_entities", "unknown_entity_key"),
                 "none (the features need no entity)")
    columns: dict[str, list[int | str]] = {}
    for name, kind in key_types.items():
        if name not in entities:
            raise RequestError("missing_entity_key", f"missing entity key column '{name}'")
        columns[name] = _key_values(entities[name], name, kind)
    return columns, _common_length(columns, "entity key columns")


def request_columns(
    request: object, field_types: Mapping[str, ColumnType], rows: int | None,
    ignored: Collection[str] = (),
) -> tuple[dict[str, np.ndarray], int | None]:
    """Check request fields and convert them to the float64 arrays kernels read.

    Args:
        request: mapping of field → list of values, or None when no field is needed.
        field_types: the fields the request features need → their types.
        rows: the number of entities, or None when the lookup has no entity keys
            (then the fields' common length decides).
        ignored: fields that may be given although these features do not read them
            (the registry's other request fields); they are left out.

    Returns:
        field → float64 array (NaN for null; booleans 1/0; timestamps in microseconds),
        or for a string field an object array of str and None; and the row count.

    Raises:
        RequestError: a missing or unknown field, a value of the wrong type, or a length
            that differs from the entity columns.
    """
    if request is None:
        request = {}
    if ignored and isinstance(request, Mapping):
        request = {name: values for name, values in request.items()
                   if name in field_types or name not in ignored}
    _check_names(request, field_types, "request", "field names", "request field",
                 ("invalid_request_fields", "unknown_request_field"), "none")
    arrays: dict[str, np.ndarray] = {}
    for name, kind in field_types.items():
        if name not in request:
            raise RequestError(
                "missing_request_field",
                f"missing request field '{name}' ({kind}), needed by the requested features",
            )
        arrays[name] = _field_values(request[name], name, kind)
    if rows is None:
        return arrays, _common_length(arrays, "request fields") if arrays else None
    for name, values in arrays.items():
        if len(values) != rows:
            raise RequestError(
                "length_mismatch",
                f"request field '{name}' has {len(values)} values for {rows} entities",
            )
    return arrays, rows


def _check_names(value: object, known: Mapping[str, ColumnType], argument: str, keys: str,
                 kind: str, codes: tuple[str, str], nothing: str) -> None:
    """`value` must be a mapping whose names are all in `known` (entities, request)."""
    if not isinstance(value, Mapping):
        raise RequestError(
            codes[0], f"'{argument}' must map {keys} to lists of values, got "
            f"{type(value).__name__}")
    for name in value:
        if name not in known:
            expected = ", ".join(known) or nothing
            raise RequestError(codes[1], f"unknown {kind} '{name}'; the features need: {expected}")


def _as_list(values: object, label: str, code: str) -> list[Any]:
    if type(values) is list:  # JSON's case, first: the ABC checks below cost more
        return values.copy()
    if isinstance(values, np.ndarray):
        return values.tolist()
    if isinstance(values, Sequence) and not isinstance(values, str | bytes):
        return list(values)
    tolist = getattr(values, "tolist", None)  # pandas and polars Series
    if callable(tolist) and not isinstance(values, str | bytes):
        return list(tolist())
    raise RequestError(code, f"{label} must be a list of values, got {type(values).__name__}")


def _key_values(values: object, name: str, kind: ColumnType) -> list[int | str]:
    items = _as_list(values, f"entity key column '{name}'", "invalid_entities")
    if len(items) > MAX_ENTITIES:
        raise RequestError(
            "too_many_entities",
            f"{len(items)} entities in one lookup; the limit is {MAX_ENTITIES}",
        )
    if kind not in _KEY_KINDS:
        raise RequestError("wrong_type", f"key column '{name}' is {kind}; keys are ints or strs")
    # Fast path for what JSON and plain Python give: exact types (bool is no int here).
    expected = int if kind is ColumnType.INT else str
    if all(type(value) is expected for value in items) and (
            kind is ColumnType.STRING or not items
            or (min(items) >= _INT64_MIN and max(items) <= _INT64_MAX)):
        return items
    converted: list[int | str] = []
    for row, value in enumerate(items):
        if kind is ColumnType.STRING and isinstance(value, str):
            converted.append(value)
            continue
        if kind is ColumnType.INT and not isinstance(value, bool | np.bool_ | str):
            try:
                number = operator.index(value)
            except TypeError:
                pass
            else:
                # Keys are int64 in every source: a larger number can match nothing.
                if _INT64_MIN <= number <= _INT64_MAX:
                    converted.append(number)
                    continue
        raise RequestError(
            "wrong_type",
            f"entity key '{name}' row {row}: expected {_KEY_KINDS[kind]} (the source's "
            f"'{name}' is {kind}), got {value!r} ({type(value).__name__})",
        )
    return converted


def _field_values(values: object, name: str, kind: ColumnType) -> np.ndarray:
    items = _as_list(values, f"request field '{name}'", "invalid_request_fields")
    if len(items) > MAX_ENTITIES:
        raise RequestError(
            "too_many_entities",
            f"{len(items)} rows in one lookup; the limit is {MAX_ENTITIES}",
        )
    if kind is ColumnType.STRING:
        return _string_values(items, name)
    if kind is ColumnType.FLOAT and all(type(value) in _PLAIN_NUMBERS for value in items):
        # Fast path: plain floats, ints and None (NaN) convert in one call.
        try:
            return np.array(items, dtype=np.float64)
        except OverflowError:
            pass  # an int beyond float64: the loop below names it
    out = np.empty(len(items))
    for row, value in enumerate(items):
        try:
            out[row] = _field_number(value, kind)
        except (TypeError, ValueError, OverflowError):
            raise RequestError(
                "wrong_type",
                f"request field '{name}' row {row}: expected {_FIELD_KINDS[kind]} or null, "
                f"got {value!r} ({type(value).__name__})",
            ) from None
    return out


def _string_values(items: list[Any], name: str) -> np.ndarray:
    """A string field's values: str or None (a NaN, as pandas gives for a gap, is null)."""
    out = np.empty(len(items), dtype=object)
    for row, value in enumerate(items):
        if value is None or isinstance(value, str):
            out[row] = value
        elif isinstance(value, float) and math.isnan(value):
            out[row] = None
        else:
            raise RequestError(
                "wrong_type",
                f"request field '{name}' row {row}: expected a string or null, "
                f"got {value!r} ({type(value).__name__})",
            )
    return out


def _field_number(value: object, kind: ColumnType) -> float:
    """One request value as the kernels see it; TypeError/ValueError when it does not fit."""
    if value is None:
        return math.nan
    if kind is ColumnType.BOOL:
        if isinstance(value, bool | np.bool_):
            return 1.0 if value else 0.0
        raise TypeError
    if isinstance(value, bool | np.bool_):
        raise TypeError
    if kind is ColumnType.TIMESTAMP:
        if not isinstance(value, str | dt.datetime):
            raise TypeError
        try:
            return float(to_micros(value))
        except InputError:
            raise ValueError from None
    if kind is ColumnType.INT:
        number = operator.index(value) if not isinstance(value, float) else _integral(value)
        if abs(number) > 2**53:
            raise ValueError  # beyond float64's exact integers: the kernel would round it
        return float(number)
    if isinstance(value, Real):
        return float(value)
    raise TypeError


def _integral(value: float) -> int:
    if not math.isfinite(value) or not value.is_integer():
        raise ValueError
    return int(value)


def _common_length(columns: Mapping[str, Sequence[Any] | np.ndarray], label: str) -> int:
    if len(columns) == 1:
        return len(next(iter(columns.values())))
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise RequestError("length_mismatch", f"{label} have different lengths ({shown})")
    return next(iter(lengths.values()), 0)
