"""Tables read from and written to files named on the command line, by extension.

    .parquet, .pq       Parquet
    .csv                CSV; times written as ISO-8601 text in UTC with `+00:00`, list
                        features (last_n, top_k, ...) as JSON arrays
    .json, .jsonl       JSON lines: one object per row; times as in CSV; null = null
    .arrow, .feather    Arrow IPC file (Feather v2 is the same format, LZ4-compressed)

Any other extension is refused with the list above (`check_table_path`), so a command
can refuse before it does any work. Text formats hold no types: a naive timestamp
column means UTC (as everywhere in the project) and is written with `+00:00`, so that a
reader of the file cannot take it for local time. Output is written under a temporary
name and renamed, so a failed or interrupted write never leaves a partial file under the
requested name.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from featurestore.errors import InputError

FORMATS: dict[str, str] = {
    ".parquet": "Parquet", ".pq": "Parquet", ".csv": "CSV", ".json": "JSON lines",
    ".jsonl": "JSON lines", ".arrow": "Arrow IPC", ".feather": "Feather",
}
"""File extension → format, for reading and writing."""
_JSON_BATCH_ROWS = 10_000


def table_format(path: Path) -> str:
    """The format a file name says (see FORMATS).

    Raises:
        InputError: an extension that names no format (the message lists them).
    """
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = f"extension '{path.suffix}'" if path.suffix else "no extension"
        raise InputError(f"{path} has {shown}; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def check_table_path(path: Path) -> None:
    """Refuse a file name whose extension names no format (before any work).

    Raises:
        InputError: see `table_format`.
    """
    table_format(path)


def is_csv(path: Path) -> bool:
    """Whether a file name says CSV."""
    return path.suffix.lower() == ".csv"


def read_table_file(path: Path) -> pa.Table:
    """Read a table file by its extension (CSV and JSON types are inferred; ISO-8601
    times stay text or become timestamps, both of which spines accept).

    Raises:
        InputError: an unknown extension, or the file is missing or not readable in its
            format.
    """
    if not path.exists():
        raise InputError(f"file not found: {path}")
    try:
        kind = table_format(path)
    except InputError as error:
        raise InputError(f"{path} is not readable: {error}") from None
    try:
        if kind == "CSV":
            return pa_csv.read_csv(path)
        if kind == "JSON lines":
            return pa_json.read_json(path)
        if kind in ("Arrow IPC", "Feather"):
            return feather.read_table(path)
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path} is not readable {kind}: {error}") from error


def write_table_file(table: pa.Table, path: Path) -> None:
    """Write a table in the format its file name says, atomically.

    Raises:
        InputError: an unknown extension.
    """
    kind = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        if kind == "CSV":
            pa_csv.write_csv(_text_lists(text_times(table)), temporary)
        elif kind == "JSON lines":
            _write_json_lines(text_times(table), temporary)
        elif kind == "Arrow IPC":
            with pa.OSFile(str(temporary), "wb") as sink, pa.ipc.new_file(
                    sink, table.schema) as writer:
                writer.write_table(table)
        elif kind == "Feather":
            feather.write_feather(table, temporary)
        else:
            pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def text_times(table: pa.Table) -> pa.Table:
    """The table with every timestamp column as ISO-8601 text in UTC ending `+00:00`
    (naive timestamps are UTC); nulls stay null."""
    for index, column_field in enumerate(table.schema):
        if not pa.types.is_timestamp(column_field.type):
            continue
        # Arrow stores UTC instants whatever the zone: a cast only relabels them. %S of
        # a sub-second unit carries the fraction.
        utc = table.column(index).cast(pa.timestamp(column_field.type.unit, tz="UTC"))
        text = pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S", locale="C")
        table = table.set_column(index, column_field.name,
                                 pc.binary_join_element_wise(text, "+00:00", ""))
    return table


def _text_lists(table: pa.Table) -> pa.Table:
    """The table with every list column as JSON text (CSV has no lists); nulls stay null."""
    for index, column_field in enumerate(table.schema):
        if pa.types.is_list(column_field.type):
            values = table.column(index).to_pylist()
            text = [None if v is None else orjson.dumps(v).decode() for v in values]
            table = table.set_column(index, column_field.name, pa.array(text, pa.string()))
    return table


def _write_json_lines(table: pa.Table, path: Path) -> None:
    """One JSON object per row (orjson: NaN and null become null)."""
    with path.open("wb") as out:
        for batch in table.to_batches(max_chunksize=_JSON_BATCH_ROWS):
            out.write(b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
                               for row in batch.to_pylist()))
