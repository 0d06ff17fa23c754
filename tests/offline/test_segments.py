"""Pushed-event segments: atomic appends, listing, and concurrent writers and readers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.offline.segments import append_segment, list_segments, segment_dir

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 2
SEGMENTS_PER_WRITER = 25
ROWS_PER_SEGMENT = 10


def _events(first: int, count: int) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(range(first, first + count), pa.int64()),
            "event_ts": pa.array(range(count), pa.timestamp("us")),
            "amount": pa.array([1.0] * count),
        }
    )


def test_segments_are_listed_in_write_order(tmp_path: Path) -> None:
    written = [append_segment(tmp_path, "transactions", _events(i, 2)) for i in range(5)]
    folder = segment_dir(tmp_path, "transactions")
    assert folder == tmp_path / "pushed" / "transactions"
    assert list_segments(folder) == written
    assert [pq.read_table(path).column(0)[0].as_py() for path in written] == list(range(5))
    assert sorted(path.name for path in folder.iterdir()) == [path.name for path in written]
    assert list_segments(tmp_path / "pushed" / "other") == []


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    class Unwritable:
        """Not a table: the Parquet writer fails halfway."""

        schema = pa.schema([("x", pa.int64())])

    with pytest.raises((TypeError, AttributeError, pa.ArrowException)):
        append_segment(tmp_path, "s", Unwritable())  # type: ignore[arg-type]
    assert list((tmp_path / "pushed" / "s").iterdir()) == []


@pytest.mark.parametrize("name", ["", "..", "a/b", "../x"])
def test_source_names_cannot_escape_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="cannot name a folder"):
        segment_dir(tmp_path, name)


WRITER = """
import sys, time
import pyarrow as pa
from featurestore.offline.segments import append_segment

offline_dir = sys.argv[1]
writer, segments, rows = (int(argument) for argument in sys.argv[2:5])
for index in range(segments):
    time.sleep(0.02)  # pacing only: spread the appends over the reader's loop
    first = (writer * segments + index) * rows
    table = pa.table({
        "user_id": pa.array(range(first, first + rows), pa.int64()),
        "event_ts": pa.array(range(rows), pa.timestamp("us")),
        "amount": pa.array([float(index)] * rows),
    })
    append_segment(offline_dir, "transactions", table)
"""

READER = """
import json, sys, time
import duckdb
from featurestore.offline.sources import SourceSpec, count_rows

base_dir, expected = sys.argv[1], int(sys.argv[2])
spec = SourceSpec("transactions", "events.parquet", None, None, "event_ts",
                  pushed_dir="data/pushed/transactions")
con = duckdb.connect()
counts = [count_rows(con, spec, base_dir)]
print("ready", flush=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    counts.append(count_rows(con, spec, base_dir))
    if counts[-1] == expected:
        break
print(json.dumps(counts))
"""


@pytest.mark.slow
def test_two_writer_processes_and_a_reader_while_duckdb_is_locked(tmp_path: Path) -> None:
    """Pushes land while another process holds the offline DuckDB file for writing."""
    offline_dir = tmp_path / "data"
    offline_dir.mkdir()
    pq.write_table(_events(-5, 5), tmp_path / "events.parquet")
    # A materialization in progress: the write lock on the offline file is taken.
    materializing = duckdb.connect(str(offline_dir / "offline.duckdb"))
    materializing.execute("CREATE TABLE tiles AS SELECT 1 AS x")
    expected = 5 + WRITERS * SEGMENTS_PER_WRITER * ROWS_PER_SEGMENT

    def start(script: str, *args: object) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", textwrap.dedent(script), *map(str, args)]
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)

    reader = start(READER, tmp_path, expected)
    assert reader.stdout is not None and reader.stdout.readline() == "ready\n"
    writers = [
        start(WRITER, offline_dir, index, SEGMENTS_PER_WRITER, ROWS_PER_SEGMENT)
        for index in range(WRITERS)
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    output, _ = reader.communicate(timeout=150)
    assert reader.returncode == 0
    counts = json.loads(output)
    # The reader only ever saw whole segments, never fewer rows than before.
    assert counts[-1] == expected
    assert all((count - 5) % ROWS_PER_SEGMENT == 0 for count in counts)
    assert counts == sorted(counts)
    assert len(set(counts)) >= 3, "the reader should have run while the writers did"
    segments = list_segments(segment_dir(offline_dir, "transactions"))
    assert len(segments) == WRITERS * SEGMENTS_PER_WRITER
    users = pa.concat_tables(pq.read_table(path) for path in segments).column("user_id")
    assert sorted(users.to_pylist()) == list(range(expected - 5))
    materializing.close()
