"""The shared folder of one remote run: what the driver plans and the workers write.

A run on a remote engine (Dask) gets a fresh folder `<work dir>/<run id>/` holding the
spine rows per partition, staged sources, exported states and the workers' Parquet
parts. The work dir is $FEATURESTORE_WORK_DIR, else the registry's `store.work_dir`
(relative to the registry's folder), else `.work` beside the offline file: every
worker must see it at the same path. The folder is removed when the run ends, whether
it committed or failed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from featurestore.context import StoreContext

WORK_DIR_ENV = "FEATURESTORE_WORK_DIR"


def work_dir(store: StoreContext) -> Path:
    """The folder that runs' folders are made in (see the module docstring)."""
    override = os.environ.get(WORK_DIR_ENV)
    if override:
        return Path(override).resolve()
    configured = store.registry.store.work_dir
    if configured is not None:
        return (store.base_dir / configured).resolve()
    return store.offline_path.parent / ".work"


@contextmanager
def run_folder(store: StoreContext) -> Iterator[Path]:
    """A new, empty run folder, removed with everything in it when the block ends."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = work_dir(store) / f"{stamp}-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
