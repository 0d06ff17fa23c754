"""The `push` command: events from a file (or standard input) into a source.

The rows go through `FeatureStore.push`, so they are checked exactly as an SDK or HTTP
push checks them: one bad row is a one-line error and nothing is stored.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import IO, Any

import click
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from featurestore.cli.group import main, registry_option, shown
from featurestore.errors import InputError
from featurestore.serving.push import PushResult
from featurestore.store import FeatureStore

STDIN = "-"
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
_FORMATS_BY_SUFFIX = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv",
                      **dict.fromkeys(JSON_LINES_SUFFIXES, "jsonl")}


@main.command()
@registry_option
@click.argument("source")
@click.argument("file", metavar="FILE")
@click.option("--format", "file_format", type=click.Choice(["parquet", "csv", "jsonl"]),
              default=None,
              help="How FILE is written; default: by its name (.parquet/.pq, .csv, "
                   ".jsonl/.ndjson/.json), and JSON lines for standard input.")
def push(registry: Path, source: str, file: str, file_format: str | None) -> None:
    """Push the events in FILE to SOURCE: stored for good, then folded into the online
    states so lookups include them at once.

    FILE is Parquet, CSV or JSON lines (one object per line), or - for JSON lines on
    standard input. Rows are checked against the source's schema first: one bad row
    stores nothing. Pushed events are permanent (training sets and every later
    materialization read them).
    """
    kind = file_format or format_of(file)
    rows = read_stdin(kind) if file == STDIN else read_rows(Path(file), kind)
    store = FeatureStore(registry)
    started = time.perf_counter()
    try:
        result = store.push(source, rows, via="cli")
    except InputError as error:
        name = "standard input" if file == STDIN else shown(Path(file))
        raise InputError(located_in_file(str(error), rows, kind, name)) from None
    finally:
        store.close()
    for warning in result.warnings:  # broken `on_fail: warn` expectations; rows kept
        click.echo(f"warning: {warning}", err=True)
    click.echo(describe_push(result, time.perf_counter() - started))


_ROW = re.compile(r"\brow (\d+)\b")


def located_in_file(message: str, rows: pa.Table | list[dict[str, Any]], kind: str,
                    name: str) -> str:
    """A push error's row (counted from 0, as for SDK and HTTP rows) as a place in the
    file: its line for JSON lines and CSV, its row from 1 for Parquet."""
    match = _ROW.search(message)
    if match is None:
        return message
    row = int(match.group(1))
    if kind == "jsonl" and isinstance(rows, JsonLines) and row < len(rows.line_numbers):
        where = f"line {rows.line_numbers[row]} of {name}"
    elif kind == "csv":
        where = f"line {row + 2} of {name}, after its header"
    else:
        where = f"row {row + 1} of {name}, counting from 1"
    return f"{message} ({where})"


class JsonLines(list):  # type: ignore[type-arg]
    """Rows read from JSON lines, with the line each came from (blank lines skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.line_numbers: list[int] = []


def format_of(file: str) -> str:
    """The format a file name says: "parquet", "csv" or "jsonl".

    Raises:
        InputError: the name has no known suffix.
    """
    if file == STDIN:
        return "jsonl"
    suffix = Path(file).suffix.lower()
    if suffix not in _FORMATS_BY_SUFFIX:
        known = ", ".join(_FORMATS_BY_SUFFIX)
        raise InputError(f"{file}: unknown file type {suffix or '(no suffix)'!r}: expected "
                         f"one of {known}, or name the format with --format")
    return _FORMATS_BY_SUFFIX[suffix]


def read_rows(path: Path, kind: str) -> pa.Table | list[dict[str, Any]]:
    """The rows of a file: an Arrow table (Parquet, CSV) or a list of dicts (JSON lines).

    Raises:
        InputError: the file is missing or not readable in its format.
    """
    if not path.exists():
        raise InputError(f"file not found: {shown(path)}")
    try:
        if kind == "jsonl":
            with path.open("rb") as lines:
                return parse_json_lines(lines, shown(path))
        return pa_csv.read_csv(path) if kind == "csv" else pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        label = {"csv": "CSV", "parquet": "Parquet", "jsonl": "JSON lines"}[kind]
        reason = " ".join(str(error).split())  # Arrow's messages may span lines
        raise InputError(f"{shown(path)} is not readable {label}: {reason}") from error


def read_stdin(kind: str) -> pa.Table | list[dict[str, Any]]:
    """The rows on standard input, JSON lines or CSV (Parquet needs a file).

    Raises:
        InputError: Parquet was asked for, or the input does not parse.
    """
    if kind == "jsonl":
        return parse_json_lines(sys.stdin.buffer, "standard input")
    if kind == "csv":
        try:
            return pa_csv.read_csv(pa.py_buffer(sys.stdin.buffer.read()))
        except pa.ArrowInvalid as error:
            raise InputError(f"standard input is not readable CSV: {error}") from error
    raise InputError("Parquet cannot be read from standard input: name the file")


def parse_json_lines(lines: IO[bytes], name: str) -> list[dict[str, Any]]:
    """One dict per non-blank line, each line a JSON object (as HTTP pushes send rows).

    Raises:
        InputError: a line that is not a JSON object, named by its number.
    """
    rows = JsonLines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise InputError(f"{name}, line {number}: not JSON ({error})") from None
        if not isinstance(row, dict):
            kind = "an array" if isinstance(row, list) else type(row).__name__
            raise InputError(f"{name}, line {number}: expected one JSON object per line "
                             f"(JSON lines), got {kind}")
        rows.append(row)
        rows.line_numbers.append(number)
    return rows


def describe_push(result: PushResult, seconds: float) -> str:
    """What `push` prints: rows stored, and whether the online store took them."""
    if result.rows == 0:
        return f"nothing pushed to {result.source}: no rows"
    stored = f"pushed {result.rows:,} rows to {result.source}"
    if result.online:
        return (f"{stored}; online store updated ({result.entities:,} entity states) "
                f"({seconds:.1f}s)")
    return (f"{stored}; online store not updated: nothing is materialized yet, the next "
            f"`featurestore materialize` loads them ({seconds:.1f}s)")
