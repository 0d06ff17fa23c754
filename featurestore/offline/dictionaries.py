"""String dictionaries: string columns reach the kernels as float64 codes.

A dictionary is a list of distinct strings; a value's code is its index. Dictionaries
are built sorted, so code order is lexical order (by code point, which is also UTF-8 byte
order and DuckDB's VARCHAR order); the kernels rely on that to break `first`/`last` ties.

Codes, once handed out, must stay valid: state stored online holds codes. So a
dictionary only ever grows at its end. Values it does not hold yet (events pushed after
it was built) are appended, sorted among themselves, when encoding with `extend=True`;
the caller then stores the extended list. Appended values break the lexical order of
codes only among themselves and the older values, and only for ties at equal timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.offline.sources import (
    SourceSpec,
    fetch_table,
    quote_identifier,
    source_errors,
    source_relation,
)


def build_dictionaries(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    base_dir: Path | str,
    string_columns: Sequence[str],
) -> dict[str, list[str]]:
    """Sorted distinct non-null values of each string column, pushed events included.

    One scan of the source serves every column.

    Args:
        con: a connection to the offline database.
        spec: the source.
        base_dir: folder that relative paths are resolved against.
        string_columns: the columns to build dictionaries for.

    Returns:
        column → sorted list of its distinct values.

    Raises:
        SourceError: the source cannot be read or lacks a column.
    """
    if not string_columns:
        return {}
    aggregates = ", ".join(
        f"list(DISTINCT CAST({quote_identifier(name)} AS VARCHAR)) "
        f"FILTER (WHERE {quote_identifier(name)} IS NOT NULL)"
        for name in string_columns
    )
    with source_errors(spec):
        row = fetch_table(con, f"SELECT {aggregates} FROM {source_relation(spec, base_dir)}")
    # Sort in Python rather than trusting a collation: code point order is the contract.
    return {
        name: sorted(row.column(index)[0].as_py() or [])
        for index, name in enumerate(string_columns)
    }


def extend_dictionary(dictionary: list[str], values: pa.Array | pa.ChunkedArray) -> list[str]:
    """Append the values the dictionary lacks (sorted among themselves), in place.

    Returns:
        The values that were appended.
    """
    known = pa.array(dictionary, type=pa.string())
    strings = values.cast(pa.string())
    unknown = pc.filter(strings, pc.invert(pc.is_in(strings, value_set=known)))
    new = sorted(set(pc.drop_null(unknown).to_pylist()))
    dictionary.extend(new)
    return new


def encode_strings(
    values: pa.Array | pa.ChunkedArray, dictionary: list[str], *, extend: bool = False
) -> np.ndarray:
    """Dictionary codes of string values, as float64 with NaN for null.

    Args:
        values: strings (any Arrow string type).
        dictionary: the column's dictionary; extended in place when `extend` is true.
        extend: append values the dictionary lacks instead of failing.

    Raises:
        ValueError: a value is not in the dictionary and `extend` is false.
    """
    strings = values.cast(pa.string())
    codes = pc.index_in(strings, value_set=pa.array(dictionary, type=pa.string()))
    missing = codes.null_count - strings.null_count
    if missing:
        unknown = pc.filter(strings, pc.and_(pc.is_null(codes), pc.is_valid(strings)))
        if not extend:
            raise ValueError(
                f"{missing} values are not in the dictionary (first: {unknown[0].as_py()!r})"
            )
        # Rare (values pushed after the dictionary was built): look up once more.
        extend_dictionary(dictionary, unknown)
        codes = pc.index_in(strings, value_set=pa.array(dictionary, type=pa.string()))
    return pc.fill_null(codes.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)


def decode_codes(codes: np.ndarray, dictionary: Sequence[str]) -> pa.Array:
    """Strings for float64 codes (NaN → null), e.g. a `last` feature of a string column."""
    codes = np.asarray(codes, dtype=np.float64)
    valid = ~np.isnan(codes)
    indices = pa.array(np.where(valid, codes, 0).astype(np.int64), mask=~valid)
    return pc.take(pa.array(list(dictionary), type=pa.string()), indices)
