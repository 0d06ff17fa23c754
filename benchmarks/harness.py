"""What the benchmark scripts share around their measurements.

Each script runs as `python benchmarks/<name>.py`, so this folder is on `sys.path` and
`import harness` finds this module; it imports nothing but the standard library, so a
parent process that must stay small (its memory is the floor of its children's figures)
can use it.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("featurestore", "transforms")


def peak_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB.

    Not `ru_maxrss` from the parent: on Linux a freshly spawned child inherits the
    parent's high-water mark, so that figure can be the parent's.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def progress(message: str) -> None:
    """A timestamped progress line on stderr (stdout holds the report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def in_work_folder(work_dir: Path | None, prefix: str, run: Callable[[Path], None]) -> None:
    """Run `run` in `work_dir` (created, and kept), or in a temporary folder removed after."""
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        run(work_dir.resolve())
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as work:
        run(Path(work))


def source_fingerprint() -> str:
    """A digest of the Python sources under featurestore/ and transforms/: the code a run
    measures (they may be edited while a benchmark runs; a report whose digests at spawn
    and at exit differ measured a mix)."""
    digest = hashlib.sha256()
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            try:
                digest.update(path.read_bytes())
            except OSError:  # removed while listed
                continue
    return digest.hexdigest()[:12]
