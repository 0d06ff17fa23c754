"""A record of every online state version published: what each view's state held.

The online store keeps only the published version's metadata and the runs table only
each view's last run, so once a materialization replaces a state nothing would say
any more which events it held. Every publication therefore appends, per view, its
version name, the applied registry version that built it, its end, state key,
dictionaries and source manifest (files read, pushed segments pinned) to
`featurestore_publications`; `replay` reads them to recompute values an older state
served. Rows are appended while the version is staged, before it is published: a
version whose publication then failed has rows that no served value names.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import orjson

from featurestore.offline.manifest import SourceManifest
from featurestore.registry.state import table_exists

PUBLICATIONS_TABLE = "featurestore_publications"


@dataclass(frozen=True)
class PublishedState:
    """One view's state in one published version.

    Attributes:
        version: the online version name.
        view: the feature view.
        registry_version: the applied registry version that built it.
        state_key: its state key.
        end_us: its materialization end.
        dictionaries: string column → values, as the run stored them.
        manifest: what the run read (None: not recorded).
    """

    version: str
    view: str
    registry_version: int
    state_key: str
    end_us: int
    dictionaries: dict[str, list[str]]
    manifest: SourceManifest | None


def record_publication(con: duckdb.DuckDBPyConnection, version: str, registry_version: int,
                       runs_table: str) -> None:
    """Append what each view's last run (in `runs_table`) publishes as `version`."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {PUBLICATIONS_TABLE} (version VARCHAR NOT NULL, "
                "view VARCHAR NOT NULL, registry_version INTEGER NOT NULL, "
                "state_key VARCHAR NOT NULL, end_us BIGINT NOT NULL, "
                "dictionaries VARCHAR NOT NULL, manifest VARCHAR, "
                "recorded_at TIMESTAMPTZ NOT NULL)")
    con.execute(f"INSERT INTO {PUBLICATIONS_TABLE} SELECT ?, view, ?, state_key, end_us, "
                f"dictionaries, manifest, now() FROM {runs_table}", [version, registry_version])


def published_states(con: duckdb.DuckDBPyConnection, versions: list[str]
                     ) -> dict[tuple[str, str], PublishedState]:
    """The recorded states of these versions, by (version, view) (empty: none recorded)."""
    if not versions or not table_exists(con, PUBLICATIONS_TABLE):
        return {}
    rows = con.execute(
        f"SELECT version, view, registry_version, state_key, end_us, dictionaries, manifest "
        f"FROM {PUBLICATIONS_TABLE} WHERE list_contains(?, version)", [versions]).fetchall()
    return {(row[0], row[1]): PublishedState(row[0], row[1], int(row[2]), row[3], int(row[4]),
                                             orjson.loads(row[5]),
                                             SourceManifest.from_json(row[6]))
            for row in rows}
