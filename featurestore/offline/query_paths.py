"""Relative file names in a `query:` source mean the registry's folder.

DuckDB looks a relative name up in the working directory first and in its
`file_search_path` only when nothing is there, so a query reading `data/events.parquet`
run from a folder that has its own `data/events.parquet` would read that file instead
(seen: a clone where the demo had written its sample data, and a test project's query
beside it). The query's string literals that name a file or glob under the registry's
folder are therefore made absolute before DuckDB sees the query.
"""

from __future__ import annotations

import glob
from pathlib import Path

import duckdb


def anchor_query_paths(query: str, base_dir: Path | str) -> str:
    """`query` with each quoted relative path that exists under `base_dir` (a file, a
    folder, or a glob matching something) replaced by its absolute path.

    Other literals (values, URLs, absolute paths, names matching nothing there) are left
    as written; a query DuckDB cannot tokenize is returned unchanged for DuckDB to report.
    """
    try:
        tokens = duckdb.tokenize(query)
    except duckdb.Error:
        return query
    base = Path(base_dir)
    starts = [start for start, kind in tokens if kind == duckdb.token_type.string_const]
    pieces, position = [], 0
    for start in starts:
        end = _literal_end(query, start)
        if end is None:
            continue
        anchored = _anchored(query[start + 1:end - 1].replace("''", "'"), base)
        if anchored is not None:
            pieces += [query[position:start], "'" + anchored.replace("'", "''") + "'"]
            position = end
    return "".join(pieces) + query[position:]


def _literal_end(query: str, start: int) -> int | None:
    """The index after the closing quote of the '...' literal at `start`."""
    if query[start] != "'":
        return None
    index = start + 1
    while index < len(query):
        if query[index] == "'":
            if query[index + 1:index + 2] == "'":  # an escaped quote
                index += 2
                continue
            return index + 1
        index += 1
    return None


def _anchored(text: str, base: Path) -> str | None:
    if not text or "://" in text or Path(text).expanduser().is_absolute():
        return None
    candidate = base / text
    if glob.has_magic(text):
        return str(candidate) if glob.glob(str(candidate), recursive=True) else None
    return str(candidate) if candidate.exists() else None
