"""Tables read from and written to files named on the command line: Parquet or CSV.

The format follows the file name: `.csv` is CSV, anything else Parquet. Output is
written under a temporary name and renamed, so a failed or interrupted write never
leaves a partial file under the requested name.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from featurestore.errors import InputError


def is_csv(path: Path) -> bool:
    """Whether a file name says CSV (otherwise it is taken as Parquet)."""
    return path.suffix.lower() == ".csv"


def read_table_file(path: Path) -> pa.Table:
    """Read a Parquet or CSV file (CSV types are inferred; ISO-8601 times stay text
    or become timestamps, both of which spines accept).

    Raises:
        InputError: the file is missing or not readable in its format.
    """
    if not path.exists():
        raise InputError(f"file not found: {path}")
    kind = "CSV" if is_csv(path) else "Parquet"
    try:
        return pa_csv.read_csv(path) if is_csv(path) else pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path} is not readable {kind}: {error}") from error


def write_table_file(table: pa.Table, path: Path) -> None:
    """Write a table as Parquet or CSV (by the file name), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        if is_csv(path):
            pa_csv.write_csv(table, temporary)
        else:
            pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
