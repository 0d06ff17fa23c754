"""What a materialization read from a source, so the next one can tell what changed.

Per feature view, each run records a `SourceManifest`:

- for a file source (`path:`), every file the path matched, with its size, modification
  time and (for Parquet, from the file's footer) row count;
- the pushed-event segments it read (segments are immutable, so a name is enough);
- for a table or query, the declared change policy (the per-entity checksums that go
  with it live in their own table, see `changed_entities.py`).

Comparing the recorded manifest with the current one says what the next run must do:
new files and new segments hold events of any time (late data), so the entities they
touch are recomputed; a file that changed or went away holds rows nobody can tell
apart any more, so the view is rebuilt from all events.
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from featurestore.errors import SourceError
from featurestore.offline.sources import PARQUET_SUFFIXES, SourceSpec, pushed_segments, resolve_path


@dataclass(frozen=True)
class FileFingerprint:
    """One source file as a run saw it (`rows` is None where the format has no footer)."""

    path: str
    size: int
    mtime_ns: int
    rows: int | None


@dataclass(frozen=True)
class SourceManifest:
    """What one run read from a source (see the module docstring).

    Attributes:
        policy: `files` (a path source), `append` or `rewrite` (tables and queries).
        files: the files of a path source, sorted by path.
        segments: the pushed segments read, as absolute paths, sorted.
    """

    policy: str
    files: tuple[FileFingerprint, ...]
    segments: tuple[str, ...]

    def to_json(self) -> str:
        """The manifest as JSON text, for the runs table."""
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str | None) -> SourceManifest | None:
        """Read `to_json` text; None for a run recorded without a manifest."""
        if not text:
            return None
        data = orjson.loads(text)
        files = tuple(FileFingerprint(**item) for item in data["files"])
        return cls(data["policy"], files, tuple(data["segments"]))


@dataclass(frozen=True)
class ManifestChanges:
    """What changed in a source since a run.

    Attributes:
        rebuild: why the view must be rebuilt from all events; None when new data
            (below) is all that changed.
        new_files: files that appeared (their events, of any time, are new).
        new_segments: segments pushed since (likewise).
    """

    rebuild: str | None
    new_files: tuple[str, ...]
    new_segments: tuple[str, ...]


def capture_manifest(spec: SourceSpec, policy: str, base_dir: Path | str,
                     rebuild: bool = False) -> SourceManifest:
    """The manifest of a source as it is now; the segments are those `spec` reads.

    With `rebuild` (a run that reads all events anyway) a URL is recorded without files.

    Raises:
        SourceError: a `path` that is a URL, whose files cannot be fingerprinted
            (unless `rebuild`).
    """
    files: tuple[FileFingerprint, ...] = ()
    if spec.path:
        path = resolve_path(spec.path, base_dir)
        if "://" in path:
            if not rebuild:
                raise SourceError(
                    f"source '{spec.name}' reads a URL ({spec.path}), whose changes cannot be "
                    "detected: run `featurestore materialize --full` to rebuild from all "
                    "events")
        else:
            files = tuple(fingerprint_file(file) for file in sorted(glob.glob(path)))
    segments = tuple(sorted(str(segment) for segment in pushed_segments(spec, base_dir)))
    return SourceManifest(policy, files, segments)


def fingerprint_file(path: str) -> FileFingerprint:
    """A file's size, modification time and (Parquet) row count, as a run sees it."""
    stat = os.stat(path)
    rows = None
    if path.lower().endswith(PARQUET_SUFFIXES):
        # The footer holds the row count: reading it costs one small read.
        rows = pq.ParquetFile(path).metadata.num_rows
    return FileFingerprint(path, stat.st_size, stat.st_mtime_ns, rows)


def compare_manifests(source: str, previous: SourceManifest | None,
                      current: SourceManifest) -> ManifestChanges:
    """What changed from `previous` to `current` (see `ManifestChanges`)."""
    if previous is None:
        return ManifestChanges("no record of what the last run read", (), ())
    if previous.policy != current.policy:
        return ManifestChanges(
            f"source '{source}' changed from {previous.policy} to {current.policy}", (), ())
    before = {file.path: file for file in previous.files}
    now = {file.path: file for file in current.files}
    changed = sorted(path for path in before.keys() & now.keys() if before[path] != now[path])
    removed = sorted(before.keys() - now.keys())
    gone = sorted(set(previous.segments) - set(current.segments))
    if changed or removed or gone:
        what = (f"{len(changed)} file(s) rewritten ({_names(changed)})" if changed else
                f"{len(removed)} file(s) removed ({_names(removed)})" if removed else
                f"{len(gone)} pushed segment(s) removed")
        return ManifestChanges(f"source '{source}': {what} since the last run", (), ())
    return ManifestChanges(None, tuple(sorted(now.keys() - before.keys())),
                           tuple(sorted(set(current.segments) - set(previous.segments))))


def _names(paths: list[str]) -> str:
    shown = ", ".join(Path(path).name for path in paths[:3])
    return shown + (", ..." if len(paths) > 3 else "")
