"""Kernel output (float64, NaN for null) to the Python values a lookup returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from transforms.spec import ColumnType

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def python_values(
    values: list[float], kind: ColumnType, dictionary: Sequence[str] | None = None
) -> list:
    """One feature's values as Python objects: None for null (NaN).

    Args:
        values: float64 values from a kernel, as a list (`ndarray.tolist()` of a whole
            result matrix at once is cheaper than one conversion per feature).
        kind: the feature's result type: INT → int, BOOL → bool, STRING → the string
            of that dictionary code, TIMESTAMP → a UTC datetime, FLOAT → float.
        dictionary: the string column's dictionary (code = index), for STRING.
    """
    if kind is ColumnType.FLOAT:
        # NaN is the only float unequal to itself; the comprehension beats np.isnan
        # plus masking at the sizes lookups return.
        return [None if v != v else v for v in values]
    if kind is ColumnType.INT:
        return [None if v != v else int(v) for v in values]
    if kind is ColumnType.BOOL:
        return [None if v != v else v != 0.0 for v in values]
    if kind is ColumnType.STRING:
        names = dictionary or ()
        return [None if v != v or not 0 <= v < len(names) else names[int(v)] for v in values]
    if kind is ColumnType.TIMESTAMP:
        return [None if v != v else _EPOCH + dt.timedelta(microseconds=int(v)) for v in values]
    raise ValueError(f"no Python conversion for feature type {kind}")


def python_lists(block: list[list[float]], kind: ColumnType,
                 dictionary: Sequence[str] | None = None, ranked: bool = False) -> list:
    """One list feature's values as Python lists (None where empty).

    Args:
        block: its rows of kernel output as lists: lengths, then entries
            (`feature_columns.list_feature_array`).
        kind: the type of the entries.
        dictionary: decodes string entries.
        ranked: top_k: each entry becomes `{"value": ..., "count": ...}`.
    """
    lengths, entries = block[0], block[1:]
    size = len(entries) // 2 if ranked else len(entries)
    result: list = []
    for row, length in enumerate(lengths):
        if not length:
            result.append(None)
            continue
        values = python_values([entries[j][row] for j in range(int(length))], kind,
                               dictionary)
        if ranked:
            counts = [int(entries[size + j][row]) for j in range(int(length))]
            values = [{"value": v, "count": c} for v, c in zip(values, counts, strict=True)]
        result.append(values)
    return result
