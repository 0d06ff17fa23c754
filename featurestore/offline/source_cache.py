"""Parquet copies of CSV sources, kept between calls and refreshed when the files change.

Every read of a CSV source parses it again: its columns, its string dictionaries, its
row count and its events, in every training set, snapshot and materialization.
`SourceCache.use` gives a source spec that reads a Parquet copy of the CSV files
instead (`SourceSpec.cached`), written once by DuckDB beside the offline file:

    <offline dir>/.featurestore-cache/sources/<source>/<key>/events.parquet

**Key.** A hash of the FROM-clause text that reads the files (resolved path, reader and
its options), the DuckDB version (it parses them), and for every file the path matches
its size, modification and change times (ns), inode and device. Any write to a file
moves its change time, and the change time cannot be set back, so a file rewritten with
its old size and modification time (`cp -p`, `touch -r`) still gets a new key. A new key
writes a new copy and removes the copies of other keys.

**Racy files.** File times have a granularity (a clock tick, up to 2 s on some file
systems): a write in the same tick as the write before it leaves them as they were. A
file whose times are within `RACY_MARGIN_NS` of the moment a copy was made could have
changed without its times moving, so the copy keeps the content hash of such files and
every use hashes them again (as git does for racily clean index entries); once a check
finds the file older than the margin, the copy is marked verified and later uses trust
the metadata alone. The margin assumes file times and this machine's clock agree to
within it.

**Exactness.** The copy holds every column of every row, read by the same reader text
the source uses (a glob is read as the list of files DuckDB's glob matched, which is
what the key covers). It is used only when DuckDB reports the same column names and
types for the copy as for the files (Parquet has no HUGEINT, for one), and only by a
spec whose reader text is the one it stands for. Anything that stops a copy (a file
that cannot be parsed, a folder that cannot be written, files that change while being
copied) leaves the spec as it was: reads then parse the files, with their usual errors.

**Concurrency.** A copy is written into a temporary folder and renamed into place, so a
reader sees a whole copy or none. Each folder holds a `lock` file: readers and the
writer of a folder hold a shared `flock` on it for as long as they use the copy, and a
folder is removed only by whoever takes an exclusive lock without waiting (a copy in
use stays; the next writer removes it). Removal renames the folder away first, so no
one finds half of it. Where `flock` does not exist (Windows) sources are read directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import duckdb
import orjson

from featurestore.errors import SourceError
from featurestore.offline.schema import describe_relation
from featurestore.offline.sources import (
    SourceCopy,
    SourceSpec,
    direct_relation,
    file_reader,
    is_glob,
    quote_literal,
    resolve_path,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; copies are not used there
    fcntl = None  # type: ignore[assignment]

CACHE_FOLDER = ".featurestore-cache"
SOURCES_FOLDER = "sources"
COPY_FILE = "events.parquet"
LOCK_FILE = "lock"
META_FILE = "meta.json"
# File times this close to the moment a copy was made do not prove the content is the
# one copied (see the module docstring): 2 s granularity plus clock slack.
RACY_MARGIN_NS = 3_000_000_000
# Part of every key: a change in how copies are written or checked makes new ones.
_FORMAT = 1
_TEMPORARY_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"


def source_cache_dir(offline_path: Path) -> Path:
    """Where Parquet copies of sources live: `.featurestore-cache/sources` beside the
    offline file (a project's own data, so never in a folder shared between projects)."""
    return offline_path.parent / CACHE_FOLDER / SOURCES_FOLDER


@dataclass(frozen=True)
class FileState:
    """What a file's metadata says about its content (see the module docstring)."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @property
    def changed_ns(self) -> int:
        """The later of the modification and change times."""
        return max(self.mtime_ns, self.ctime_ns)


def file_states(paths: list[str]) -> tuple[FileState, ...]:
    """The metadata of each file, in the given order."""
    states = []
    for path in paths:
        stat = os.stat(path)
        states.append(FileState(path, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns,
                                stat.st_ino, stat.st_dev))
    return tuple(states)


def is_cacheable(spec: SourceSpec) -> bool:
    """Whether a spec is a CSV path source that a Parquet copy can stand for.

    Parquet files and tables are columnar already; queries are never copied, since
    nothing proves that a query's result depends only on files (see docs/decisions.md).
    A spec narrowed to some files (`files`) reads them directly.
    """
    return (
        fcntl is not None
        and bool(spec.path)
        and spec.files is None
        and "://" not in str(spec.path)
        and file_reader(str(spec.path)) == "read_csv_auto"
        and spec.name not in {"", ".", ".."}
        and not any(separator in spec.name for separator in ("/", "\\", os.sep))
    )


class SourceCache:
    """Parquet copies of CSV sources in `directory`, pinned while in use.

    Use as a context manager: every copy handed out by `use` stays in place until the
    context exits (or `close`).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pins = contextlib.ExitStack()
        self._copies: dict[tuple[str, str], SourceCopy | None] = {}

    def __enter__(self) -> SourceCache:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release every copy handed out (a later writer may then remove them)."""
        self._pins.close()

    def use(self, spec: SourceSpec, base_dir: Path | str) -> SourceSpec:
        """`spec` reading a fresh Parquet copy of its files, written now if need be.

        Specs that are not CSV path sources (`is_cacheable`), and any copy that cannot
        be found or written, give `spec` back unchanged.
        """
        if not is_cacheable(spec):
            return spec
        try:
            relation = direct_relation(spec, base_dir)
        except SourceError:
            return spec  # a missing file: the read says so, as it always did
        found = (spec.name, relation)
        if found not in self._copies:
            self._copies[found] = self._find_or_write(spec, relation, base_dir)
        copy = self._copies[found]
        return spec if copy is None else dataclasses.replace(spec, cached=copy)

    def _find_or_write(self, spec: SourceSpec, relation: str,
                       base_dir: Path | str) -> SourceCopy | None:
        folder = self.directory / spec.name
        try:
            files = matched_files(spec, base_dir)
            if not files:
                return None
            started = time.time_ns()
            states = file_states(files)
            entry = folder / copy_key(relation, states)
            pin = _checked_pin(entry, states, started)
            if pin is None:
                reading = _reading_relation(spec, relation, files, base_dir)
                if _write_copy(folder, entry.name, reading, relation, states, started):
                    _remove_others(folder, keep=entry.name)
                    pin = _pin(entry)
                else:
                    # Another process may have published this key first: check its copy.
                    pin = _checked_pin(entry, states, started)
        except (OSError, ValueError, KeyError, duckdb.Error):
            return None
        if pin is None:
            return None
        self._pins.enter_context(pin)
        return SourceCopy(str(entry / COPY_FILE), relation)


def matched_files(spec: SourceSpec, base_dir: Path | str) -> list[str]:
    """The files a path source reads now: the file, or what DuckDB's glob matches."""
    path = resolve_path(str(spec.path), base_dir)
    if not is_glob(path):
        return [path] if os.path.isfile(path) else []
    with duckdb.connect() as con:
        return [str(row[0]) for row in con.execute("SELECT file FROM glob(?)", [path]).fetchall()]


def copy_key(relation: str, states: tuple[FileState, ...]) -> str:
    """The folder name of the copy of `relation` over files in these states."""
    payload = orjson.dumps({
        "format": _FORMAT,
        "duckdb": duckdb.__version__,
        "relation": relation,
        "files": [dataclasses.astuple(state) for state in states],
    })  # fmt: skip
    return hashlib.sha256(payload).hexdigest()[:32]


def _reading_relation(spec: SourceSpec, relation: str, files: list[str],
                      base_dir: Path | str) -> str:
    """The reader text a copy is written from: a glob pinned to the files it matched."""
    if not is_glob(resolve_path(str(spec.path), base_dir)):
        return relation
    return direct_relation(dataclasses.replace(spec, files=tuple(files)), base_dir)


def _digest(path: str) -> str:
    """The content hash of a file (BLAKE2b, hex)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()


def _racy(states: tuple[FileState, ...], moment_ns: int) -> list[FileState]:
    """Files whose times do not prove that they did not change after `moment_ns`."""
    return [state for state in states if state.changed_ns >= moment_ns - RACY_MARGIN_NS]


def _write_meta(folder: Path, verified_ns: int, digests: dict[str, str]) -> None:
    """Replace the folder's `meta.json` in one step (readers see old or new)."""
    temporary = folder / f".{META_FILE}.{uuid.uuid4().hex}"
    temporary.write_bytes(orjson.dumps({"verified_ns": verified_ns, "digests": digests}))
    os.replace(temporary, folder / META_FILE)


def _checked_pin(entry: Path, states: tuple[FileState, ...], started: int) -> BinaryIO | None:
    """A shared lock on a copy whose files are unchanged; None when there is none.

    Racy files (see the module docstring) are hashed and compared; a copy they contradict
    is removed (unless in use elsewhere) and None is returned.
    """
    pin = _pin(entry)
    if pin is None:
        return None
    try:
        meta = orjson.loads((entry / META_FILE).read_bytes())
        racy = _racy(states, meta["verified_ns"])
        fresh = all(meta["digests"].get(state.path) == _digest(state.path) for state in racy)
        if fresh and racy and not _racy(states, started):
            # Verified now, with the files older than the margin: trust their times.
            _write_meta(entry, started, meta["digests"])
    except BaseException:
        pin.close()
        raise
    if fresh:
        return pin
    pin.close()
    _remove(entry)
    return None


def _same_lock(handle: BinaryIO, entry: Path) -> bool:
    """Whether `handle` is the lock file the folder `entry` holds now."""
    held, current = os.fstat(handle.fileno()), os.stat(entry / LOCK_FILE)
    return (held.st_ino, held.st_dev) == (current.st_ino, current.st_dev)


def _pin(entry: Path) -> BinaryIO | None:
    """A shared lock on the folder's lock file when it holds a copy, else None."""
    try:
        handle = open(entry / LOCK_FILE, "rb")  # noqa: SIM115 - held until the pin ends
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_SH)
        if _same_lock(handle, entry) and (entry / COPY_FILE).is_file():
            return handle
    except OSError:
        pass
    handle.close()
    return None


def _write_copy(folder: Path, key: str, reading: str, relation: str,
                states: tuple[FileState, ...], started: int) -> bool:
    """Write the copy of `reading` and rename it to `folder/key`; False if it is not
    exact, the files changed meanwhile, or another process published it first."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=_TEMPORARY_PREFIX, dir=folder))
    # Held shared while writing: a writer of another key leaves this folder alone.
    with open(temporary / LOCK_FILE, "xb") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            digests = {state.path: _digest(state.path) for state in _racy(states, started)}
            target = temporary / COPY_FILE
            with duckdb.connect() as con:
                con.execute("SET enable_progress_bar = false")
                con.execute(f"COPY (SELECT * FROM {reading}) TO "
                            f"{quote_literal(str(target))} (FORMAT parquet)").fetchall()
                copied = describe_relation(con, f"read_parquet({quote_literal(str(target))})")
                exact = list(copied.items()) == list(describe_relation(con, relation).items())
            paths = [state.path for state in states]
            unchanged = file_states(paths) == states and all(
                _digest(path) == digest for path, digest in digests.items())
            if not (exact and unchanged):
                return False
            _fsync(target)
            _write_meta(temporary, started, digests)
            os.rename(temporary, folder / key)
            return True
        except OSError:
            return False  # published by another process first (or the folder is gone)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)


def _fsync(path: Path) -> None:
    """Flush a file to disk, so a crash cannot leave a renamed but partial copy."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _remove_others(folder: Path, keep: str) -> None:
    """Remove every copy and abandoned temporary folder but `keep`, unless in use."""
    for child in folder.iterdir():
        if child.name == keep:
            continue
        if child.name.startswith(_TRASH_PREFIX):
            shutil.rmtree(child, ignore_errors=True)
        else:
            _remove(child)


def _remove(entry: Path) -> None:
    """Remove a copy's folder if nobody holds its lock (renamed away first)."""
    try:
        handle = open(entry / LOCK_FILE, "rb")  # noqa: SIM115 - closed below
    except (FileNotFoundError, NotADirectoryError):
        return  # being written, or removed by someone else
    trash = entry.with_name(f"{_TRASH_PREFIX}{uuid.uuid4().hex}")
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not _same_lock(handle, entry):
                return
            os.rename(entry, trash)
        except OSError:
            return  # in use, or gone
    shutil.rmtree(trash, ignore_errors=True)
