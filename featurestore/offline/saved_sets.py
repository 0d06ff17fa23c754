"""Saved, reproducible training sets.

A saved training set lives in its own folder beside the offline DuckDB file:

    <offline dir>/training-sets/<name>/data.parquet    the training set
                                      /spine.parquet   the spine it was built from
                                      /manifest.json   what it was built from

and has a row in the offline file's `featurestore_training_sets` table (name, created,
rows, registry version, manifest path), which `featurestore list training-sets` reads.
The manifest records the request (features or service, timestamp, full_names), the
SHA-256 of both Parquet files and the inputs (`set_inputs`: registry version and hash,
source fingerprints, engine and library versions).

Reproducing builds the set again from the stored spine with the current files and
definitions, writes it with the same Parquet settings and compares SHA-256. Byte
equality needs a deterministic writer: `parquet_bytes` fixes every setting that could
vary (compression and level, row group and page sizes, format version, statistics) and
combines chunks first, so that the bytes depend on the values alone; pyarrow writes no
time into Parquet metadata (only `created_by`, its version, which the manifest records).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import FeatureStoreError, InputError, NotAppliedError
from featurestore.offline.set_inputs import capture_inputs, changed_inputs
from featurestore.offline.spine import to_arrow
from featurestore.offline.training import build_training_set, plan_training_set, transform_program
from featurestore.registry.state import registry_hash, table_exists
from featurestore.registry.suggestions import did_you_mean
from featurestore.table_files import table_format, write_table_file

if TYPE_CHECKING:
    from featurestore.context import StoreContext

SETS_FOLDER = "training-sets"
SETS_TABLE = "featurestore_training_sets"
DATA_FILE = "data.parquet"
SPINE_FILE = "spine.parquet"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1

PARQUET_SETTINGS: dict[str, Any] = {
    "compression": "zstd", "compression_level": 3, "row_group_size": 1 << 20,
    "data_page_size": 1 << 20, "version": "2.6", "use_dictionary": True,
    "write_statistics": True,
}
"""The Parquet writer settings of saved sets; every one fixed, so that bytes repeat."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {SETS_TABLE} (
    name VARCHAR PRIMARY KEY,
    created TIMESTAMP NOT NULL,
    rows BIGINT NOT NULL,
    registry_version INTEGER NOT NULL,
    manifest_path VARCHAR NOT NULL
)
"""


@dataclass(frozen=True)
class SavedSet:
    """One saved training set, as the offline file lists it.

    Attributes:
        name: its name.
        created: when it was saved (UTC).
        rows: its number of rows.
        registry_version: the applied registry version it was built with.
        manifest_path: its manifest.json.
    """

    name: str
    created: datetime
    rows: int
    registry_version: int
    manifest_path: Path


@dataclass(frozen=True)
class SaveResult:
    """A training set just saved.

    Attributes:
        name: its name.
        data_path: the stored Parquet file.
        manifest_path: its manifest.
        sha256: SHA-256 of the stored Parquet file.
        table: the training set itself.
        registry_version: the applied registry version it was built with.
    """

    name: str
    data_path: Path
    manifest_path: Path
    sha256: str
    table: pa.Table
    registry_version: int

    def copy_to(self, out: Path) -> None:
        """Write the set to `out` as well: the stored bytes for Parquet (so the same
        SHA-256), else in the format its extension says (`table_files`)."""
        if table_format(out) == "Parquet":
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.data_path, out)
        else:
            write_table_file(self.table, out)

    def render(self) -> str:
        """One line for the command line."""
        return (f"saved training set {self.name} ({self.table.num_rows:,} rows, registry "
                f"version {self.registry_version}, sha256 {self.sha256}) in "
                f"{self.data_path.parent}")


@dataclass(frozen=True)
class ReproduceResult:
    """A saved training set built again and compared with the stored one.

    Attributes:
        name: the set's name.
        saved_sha256: SHA-256 of the stored file.
        sha256: SHA-256 of the rebuilt file (None when it could not be rebuilt).
        changes: the inputs that changed since it was saved, one line each.
        error: why it could not be rebuilt, or None.
    """

    name: str
    saved_sha256: str
    sha256: str | None
    changes: tuple[str, ...]
    error: str | None = None

    @property
    def identical(self) -> bool:
        """Whether the rebuilt file is byte for byte the stored one."""
        return self.sha256 == self.saved_sha256

    def render(self) -> str:
        """What the command line prints: the verdict, then what changed."""
        if self.identical:
            lines = [f"training set {self.name}: byte for byte the same (sha256 {self.sha256})"]
            if self.changes:
                lines.append("  these inputs changed without changing the result:")
        elif self.error is not None:
            lines = [f"training set {self.name}: cannot be rebuilt: {self.error}"]
        else:
            lines = [f"training set {self.name}: not reproduced: sha256 {self.sha256} "
                     f"differs from the saved {self.saved_sha256}"]
            if not self.changes:
                lines.append("  no recorded input changed, yet the bytes differ")
        lines += [f"  {change}" for change in self.changes]
        return "\n".join(lines)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as Parquet written with PARQUET_SETTINGS: the same values give the same
    bytes, whatever the table's chunking."""
    sink = pa.BufferOutputStream()
    pq.write_table(table.combine_chunks(), sink, **PARQUET_SETTINGS)
    return sink.getvalue().to_pybytes()


def set_dir(offline_path: Path, name: str) -> Path:
    """The folder of the saved set `name`.

    Raises:
        InputError: a name that could not name a folder (letters, digits, `_`, `.`, `-`,
            not starting with `.`, `_` or `-`).
    """
    if not _NAME.fullmatch(name):
        raise InputError(f"training set name {name!r}: use letters, digits, '_', '.' and "
                         "'-', starting with a letter or digit")
    return offline_path.parent / SETS_FOLDER / name


def save_training_set(
    store: StoreContext, name: str, spine: object,
    features: Sequence[str] | str | None = None, service: str | None = None,
    timestamp: str = "event_ts", full_names: bool = False, overwrite: bool = False,
    transformed: bool = False, fit: str | None = None,
) -> SaveResult:  # fmt: skip
    """Build a training set and store it with its spine and manifest (module docstring).

    A transformed set records the id of the fit it used (never "latest" or the pin,
    which may move), so that reproducing it applies the same frozen statistics.

    Raises:
        NotAppliedError: nothing is applied, or the registry file changed since.
        InputError: a bad name, a name already saved (without `overwrite`), or what
            `build_training_set` refuses.
        SourceError: a source cannot be read.
    """
    directory = set_dir(store.offline_path, name)
    if directory.exists() and not overwrite:
        raise InputError(f"a training set named '{name}' already exists ({directory}); "
                         "pass --overwrite (overwrite=True) to replace it")
    applied = store.applied()
    if applied is None or applied.registry_hash != registry_hash(store.registry_text):
        raise NotAppliedError("saving a training set needs the registry as applied, and the "
                              "registry file has changes that are not applied: run "
                              "`featurestore apply` first")
    request: dict[str, Any] = {"features": _listed(features), "service": service,
                               "timestamp": timestamp, "full_names": full_names}
    program = transform_program(store, service, True, fit) if transformed else None
    if program is not None:
        request.update(transformed=True, fit=program.artifact.id)
    plan = plan_training_set(store, request["features"], service, full_names)
    sources = [store.registry.feature_views[view].source for view in plan.views]
    # Captured before the build: a file changed while it runs shows as a change later.
    inputs = capture_inputs(store, {"version": applied.version, "hash": applied.registry_hash},
                            sources)
    spine_table = to_arrow(spine)
    table = build_training_set(store, spine_table, output="arrow", **request)
    data, spine_data = parquet_bytes(table), parquet_bytes(spine_table)
    created = datetime.now(UTC)
    manifest = {
        "format": MANIFEST_FORMAT, "name": name, "created": created.isoformat(),
        "request": request,
        "features": [f"{view}:{feature}" for view, feature in plan.selection.refs],
        "spine": {"file": SPINE_FILE, "sha256": _sha256(spine_data),
                  "rows": spine_table.num_rows},
        "output": {"file": DATA_FILE, "sha256": _sha256(data), "rows": table.num_rows,
                   "columns": table.column_names, "parquet": PARQUET_SETTINGS},
        "inputs": inputs,
    }
    _write_folder(directory, {DATA_FILE: data, SPINE_FILE: spine_data,
                              MANIFEST_FILE: orjson.dumps(manifest, option=orjson.OPT_INDENT_2)})
    saved = SavedSet(name, created, table.num_rows, applied.version, directory / MANIFEST_FILE)
    store.offline_database().run(lambda con: _record(con, saved))
    return SaveResult(name, directory / DATA_FILE, saved.manifest_path, _sha256(data), table,
                      applied.version)


def reproduce_training_set(store: StoreContext, name: str) -> ReproduceResult:
    """Build a saved training set again from its stored spine and compare the bytes.

    The registry need not be applied: a change to it is reported as one of the changes.

    Raises:
        InputError: no set has that name.
    """
    directory = set_dir(store.offline_path, name)
    manifest = read_manifest(store, name)
    changes = []
    spine_data = (directory / manifest["spine"]["file"]).read_bytes()
    if _sha256(spine_data) != manifest["spine"]["sha256"]:
        changes.append(f"the stored spine {directory / manifest['spine']['file']} changed")
    saved_inputs = manifest["inputs"]
    applied = store.applied()
    current_hash = registry_hash(store.registry_text)
    registry = {"version": applied.version if applied is not None
                and applied.registry_hash == current_hash else None, "hash": current_hash}
    sources = [source for source in saved_inputs["sources"] if source in store.registry.sources]
    try:
        current = capture_inputs(store, registry, sources)
        table = build_training_set(store, pq.read_table(pa.BufferReader(spine_data)),
                                   output="arrow", **manifest["request"])
    except FeatureStoreError as error:
        changes += _safe_changes(saved_inputs, store, registry, sources)
        return ReproduceResult(name, manifest["output"]["sha256"], None, tuple(changes),
                               str(error))
    changes += changed_inputs(saved_inputs, current, store.base_dir)
    sha256 = _write_temporary(directory, parquet_bytes(table))
    return ReproduceResult(name, manifest["output"]["sha256"], sha256, tuple(changes))


def read_manifest(store: StoreContext, name: str) -> dict[str, Any]:
    """The manifest of the saved set `name`.

    Raises:
        InputError: no set has that name (with a did-you-mean among the saved ones).
    """
    path = set_dir(store.offline_path, name) / MANIFEST_FILE
    if not path.is_file():
        names = [saved.name for saved in list_training_sets(store)]
        raise InputError(f"no saved training set named '{name}'{did_you_mean(name, names)}")
    return orjson.loads(path.read_bytes())


def list_training_sets(store: StoreContext) -> list[SavedSet]:
    """Every saved training set recorded in the offline file, oldest first."""
    if not store.offline_path.exists():
        return []

    def read(con: duckdb.DuckDBPyConnection) -> list[tuple]:
        if not table_exists(con, SETS_TABLE):
            return []
        return con.execute(f"SELECT name, created, rows, registry_version, manifest_path "
                           f"FROM {SETS_TABLE} ORDER BY created, name").fetchall()

    rows = store.offline_database().run(read, read_only=True)
    return [SavedSet(name, created.replace(tzinfo=UTC), rows, version, Path(manifest))
            for name, created, rows, version, manifest in rows]


def _listed(features: Sequence[str] | str | None) -> list[str] | str | None:
    # JSON keeps lists, not tuples: stored and rebuilt requests must read the same.
    return list(features) if features is not None and not isinstance(features, str) else features


def _safe_changes(saved: dict[str, Any], store: StoreContext, registry: dict[str, Any],
                  sources: Sequence[str]) -> list[str]:
    """The changed inputs, where they can still be captured after a failed rebuild."""
    try:
        return changed_inputs(saved, capture_inputs(store, registry, sources), store.base_dir)
    except FeatureStoreError:
        return []


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_folder(directory: Path, files: dict[str, bytes]) -> None:
    """Write the files into a fresh folder, then rename it into place (replacing an old
    one), so that a reader never sees a set with some files missing."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = directory.with_name(f".{directory.name}.{os.getpid()}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        for file, data in files.items():
            (temporary / file).write_bytes(data)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.{os.getpid()}.old")
            os.replace(directory, old)
            shutil.rmtree(old)
        os.replace(temporary, directory)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _write_temporary(directory: Path, data: bytes) -> str:
    """Write the rebuilt set beside the stored one, hash the file as written, remove it."""
    path = directory / f".reproduced.{os.getpid()}.parquet"
    try:
        path.write_bytes(data)
        return _sha256(path.read_bytes())
    finally:
        path.unlink(missing_ok=True)


def _record(con: duckdb.DuckDBPyConnection, saved: SavedSet) -> None:
    con.execute(_CREATE_TABLE)
    con.execute(f"INSERT OR REPLACE INTO {SETS_TABLE} VALUES (?, ?, ?, ?, ?)",
                [saved.name, saved.created.replace(tzinfo=None), saved.rows,
                 saved.registry_version, str(saved.manifest_path)])
