"""Durable, append-only storage of pushed events.

Every push for a source lands in a new Parquet file, a *segment*, under

    <offline_dir>/pushed/<source name>/segment-<time ns>-<pid>-<random>.parquet

where `<offline_dir>` is the folder holding the offline DuckDB file. A segment is
written to a hidden temporary name in the same folder, flushed and fsynced, then renamed
into place; a rename within one file system is atomic, so a reader in another process
sees either no file or a complete one. Segments are never rewritten or deleted here, so
a reader that listed them can always open every file it listed.

A segment may carry key-value metadata in its Parquet footer, written in the same
file and so present exactly when the events are (`push_audit` keeps who pushed them
there).

Nothing in this module opens the DuckDB file: a server taking pushes and a
materialization in another process (which holds DuckDB's single-writer lock) can run at
the same time. Readers pick segments up through `sources.source_relation`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PUSHED_FOLDER = "pushed"
SEGMENT_PREFIX = "segment-"
SEGMENT_SUFFIX = ".parquet"


def segment_dir(offline_dir: Path | str, source_name: str) -> Path:
    """The folder holding the pushed-event segments of one source.

    Args:
        offline_dir: the folder of the offline DuckDB file.
        source_name: the source's registry name.

    Raises:
        ValueError: the name could escape the folder (a path separator or `..`).
    """
    if not source_name or source_name in {".", ".."} or any(
        separator in source_name for separator in ("/", "\\", os.sep)
    ):
        raise ValueError(f"source name {source_name!r} cannot name a folder")
    return Path(offline_dir) / PUSHED_FOLDER / source_name


def _segment_name() -> str:
    # Nanosecond time first so that names sort in write order; the pid and a random
    # suffix keep names unique across processes writing in the same nanosecond.
    return (
        f"{SEGMENT_PREFIX}{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        f"{SEGMENT_SUFFIX}"
    )


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX; a no-op where unsupported)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def segment_time_ns(segment: Path) -> int:
    """When a segment was written, in nanoseconds since the epoch, from its name.

    Raises:
        ValueError: the name is not a segment's.
    """
    stem = segment.name.removeprefix(SEGMENT_PREFIX).removesuffix(SEGMENT_SUFFIX)
    return int(stem.split("-", 1)[0])


def append_segment(offline_dir: Path | str, source_name: str, table: pa.Table,
                   metadata: Mapping[str, str] | None = None) -> Path:
    """Store pushed events durably as a new segment of a source.

    The table should come from `push_validation.validate_rows`, so that every segment
    of a source has the source's column types.

    Args:
        offline_dir: the folder of the offline DuckDB file.
        source_name: the source the events belong to.
        table: the validated events.
        metadata: key-value pairs for the file's footer (beside Arrow's own schema),
            written in the same atomic write as the events.

    Returns:
        The path of the new segment, complete and durable when this returns.
    """
    directory = segment_dir(offline_dir, source_name)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / _segment_name()
    # The dot prefix and the suffix keep readers (which list `segment-*.parquet`) from
    # ever seeing the file before it is complete.
    temporary = directory / f".{final.name}.tmp"
    try:
        with open(temporary, "wb") as handle:
            with pq.ParquetWriter(handle, table.schema) as writer:
                writer.write_table(table)
                if metadata:
                    writer.add_key_value_metadata(dict(metadata))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    return final


def list_segments(directory: Path | str) -> list[Path]:
    """The complete segments in a folder, oldest first (empty if the folder is absent)."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"))
