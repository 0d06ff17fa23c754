"""What a saved training set was built from, and how to tell what has changed since.

A saved training set (`saved_sets`) records its inputs in its manifest, as the
`inputs` object that `capture_inputs` returns and `changed_inputs` compares:

- `registry`: the applied version and its SHA-256;
- `sources`: per source the features read, its files (path, size, modification time,
  Parquet row count, as `manifest.fingerprint_file` gives them, the same fingerprint
  materialization keeps) or, for a table or query, its row count and an
  order-independent checksum computed by DuckDB; and its pushed segments, fingerprinted
  like files;
- `engine`: the kernel engine's fingerprint (its sources and the Numba version);
- `versions`: the libraries whose behaviour shapes the bytes written.

Sizes and modification times tell a rewritten file from an untouched one without
reading it, as materialization does; a table has no such stamp, so it is summed.
"""

from __future__ import annotations

import glob
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from featurestore.compilation import source_spec
from featurestore.offline.manifest import fingerprint_file
from featurestore.offline.sources import base_relation, pushed_segments, resolve_path
from transforms.fingerprints import engine_fingerprint

if TYPE_CHECKING:
    from collections.abc import Iterable

    from featurestore.context import StoreContext

LIBRARIES = ("featurestore", "numpy", "numba", "duckdb", "pyarrow")
"""Distributions whose versions a manifest records (and Python's own)."""

# Summing 64-bit row hashes as HUGEINT is order-independent and, unlike XOR, does not
# let two identical rows cancel out.
_TABLE_CHECKSUM = "SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {} AS t"


def library_versions() -> dict[str, str]:
    """The versions of Python and of every library in LIBRARIES."""
    versions = {name: metadata.version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


def capture_inputs(store: StoreContext, registry: dict[str, Any],
                   sources: Iterable[str]) -> dict[str, Any]:
    """The inputs of a training set that reads `sources`, as they are now (JSON-ready).

    Args:
        store: the store whose sources are read.
        registry: `{"version": ..., "hash": ...}` of the registry in use (version None
            when the registry file is not applied).
        sources: the sources the training set reads.

    Raises:
        SourceError: a source cannot be read.
        StoreLockedError: a table or query source is needed and the offline file
            stayed locked by another process.
    """
    return {
        "registry": dict(registry),
        "sources": {name: source_fingerprint(store, name) for name in sorted(set(sources))},
        "engine": engine_fingerprint(),
        "versions": library_versions(),
    }


def source_fingerprint(store: StoreContext, name: str) -> dict[str, Any]:
    """One source's fingerprint: its files, or its rows and checksum; its segments."""
    spec = source_spec(store.registry, name, store.offline_path)
    segments = [asdict(fingerprint_file(str(path)))
                for path in pushed_segments(spec, store.base_dir)]
    if spec.path:
        path = resolve_path(spec.path, store.base_dir)
        files = [asdict(fingerprint_file(file)) for file in sorted(glob.glob(path))]
        return {"files": files, "segments": segments}
    relation = base_relation(spec, store.base_dir)
    rows, checksum = store.offline_database().run(
        lambda con: _checksum(con, relation), read_only=True)
    return {"table": {"rows": rows, "checksum": checksum}, "segments": segments}


def _checksum(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str]:
    found = con.execute(_TABLE_CHECKSUM.format(relation)).fetchone()
    return int(found[0]), str(found[1])


def changed_inputs(saved: dict[str, Any], current: dict[str, Any],
                   base_dir: Path) -> list[str]:
    """What differs between two `capture_inputs` results, one line per change.

    Files and segments are named by path (relative to `base_dir` where they lie under it).
    """
    changes = []
    if saved["registry"] != current["registry"]:
        was, now = saved["registry"], current["registry"]
        changes.append(f"registry: {_registry_text(was)} is now {_registry_text(now)}")
    for name in sorted(saved["sources"].keys() | current["sources"].keys()):
        was = saved["sources"].get(name)
        now = current["sources"].get(name)
        if was is None or now is None:
            changes.append(f"source {name}: {'no longer read' if now is None else 'now read'}")
            continue
        changes += _source_changes(name, was, now, base_dir)
    if saved["engine"] != current["engine"]:
        changes.append(f"engine: {saved['engine']} is now {current['engine']}")
    for library in sorted(saved["versions"].keys() | current["versions"].keys()):
        was, now = saved["versions"].get(library), current["versions"].get(library)
        if was != now:
            changes.append(f"library {library}: {was} is now {now}")
    return changes


def _source_changes(name: str, was: dict[str, Any], now: dict[str, Any],
                    base_dir: Path) -> list[str]:
    changes = []
    if "table" in was or "table" in now:
        if was.get("table") != now.get("table"):
            changes.append(f"source {name}: table rows or checksum changed "
                           f"({_table_text(was)} → {_table_text(now)})")
    else:
        changes += _file_changes(f"source {name}: file", was["files"], now["files"], base_dir)
    changes += _file_changes(f"source {name}: pushed segment", was["segments"],
                             now["segments"], base_dir)
    return changes


def _file_changes(label: str, was: list[dict[str, Any]], now: list[dict[str, Any]],
                  base_dir: Path) -> list[str]:
    before = {file["path"]: file for file in was}
    after = {file["path"]: file for file in now}
    changes = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            changes.append(f"{label} removed: {_shown(path, base_dir)}")
        elif path not in before:
            changes.append(f"{label} added: {_shown(path, base_dir)}")
        elif before[path] != after[path]:
            what = [key for key in ("size", "mtime_ns", "rows")
                    if before[path][key] != after[path][key]]
            changes.append(f"{label} changed: {_shown(path, base_dir)} "
                           f"({', '.join(_KEY_NAMES[key] for key in what)})")
    return changes


_KEY_NAMES = {"size": "size", "mtime_ns": "modification time", "rows": "row count"}


def _registry_text(registry: dict[str, Any]) -> str:
    version = registry["version"]
    state = "unapplied" if version is None else f"version {version}"
    return f"{state} (sha256 {registry['hash'][:12]})"


def _table_text(fingerprint: dict[str, Any]) -> str:
    table = fingerprint.get("table")
    return "a file source" if table is None else f"{table['rows']} rows"


def _shown(path: str, base_dir: Path) -> str:
    try:
        return str(Path(path).relative_to(base_dir))
    except ValueError:
        return path
