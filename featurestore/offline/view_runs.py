"""The last materialization of each feature view, as recorded in the offline file."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import duckdb

from featurestore.catalog import Materialization
from featurestore.context import StoreContext
from featurestore.offline.materialize import RUNS_TABLE
from featurestore.registry.state import table_exists
from featurestore.times import format_micros


def last_runs(store: StoreContext, state_keys: Mapping[str, str] | None
              ) -> dict[str, Materialization]:
    """The last materialization of every materialized view.

    Args:
        store: the store whose offline file is read.
        state_keys: each view's current state key, to tell whether its states were
            built for the current definition; None when unknown.

    Reads the offline file read-only; a file or table that does not exist yet means
    nothing was materialized.
    """
    if not store.offline_path.exists():
        return {}

    def read(con: duckdb.DuckDBPyConnection) -> list[tuple]:
        if not table_exists(con, RUNS_TABLE):
            return []
        return con.execute(f"SELECT view, state_key, end_us, updated_at FROM {RUNS_TABLE}"
                           ).fetchall()

    runs: dict[str, Materialization] = {}
    for view, key, end_us, updated_at in store.offline_database().run(read, read_only=True):
        current = None if state_keys is None else state_keys.get(view) == key
        finished = updated_at.isoformat() if isinstance(updated_at, datetime) else str(updated_at)
        runs[view] = Materialization(format_micros(int(end_us)), finished, current)
    return runs
