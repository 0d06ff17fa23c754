"""What reached a view's source since its last materialization, by entity.

`verify` compares online states with the offline record; an entity whose events
arrived after the materialization (a late push, a new file, a corrected table row) is
ahead of, or behind, its online state on purpose until the next run. This module names
those entities with the same change detection the next materialization will use
(`manifest.py`, `changed_entities.py`), plus the entities with pushed events at or after
the materialization end (their online states include them; the materialized ones do
not). A change that cannot be traced to entities (a rewritten or removed file) makes
the whole view stale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import duckdb

from featurestore.compilation import source_spec
from featurestore.context import StoreContext
from featurestore.errors import SourceError
from featurestore.offline.changed_entities import (
    ViewSource,
    checksum_changes,
    compute_checksums,
    key_columns,
    new_data_keys,
    write_keys,
)
from featurestore.offline.event_query import TS_COLUMN, plan_events
from featurestore.offline.manifest import SourceManifest, capture_manifest, compare_manifests
from featurestore.offline.materialize import RUNS_TABLE
from featurestore.offline.sources import SourceSpec
from transforms import CompiledView


@dataclass(frozen=True)
class Unmaterialized:
    """Entities of a view whose online state does not stand for the offline record.

    Attributes:
        entities: keys of entities with events the materialization did not fold
            (arrived since, or pushed at or after its end).
        stale: why the whole view is stale (None when the entities say it all).
        spec: the source as the materialization read it (its segments pinned).
    """

    entities: frozenset[tuple]
    stale: str | None
    spec: SourceSpec


def unmaterialized(con: duckdb.DuckDBPyConnection, store: StoreContext, view: CompiledView,
                   scratch: Path) -> Unmaterialized:
    """The entities of `view` that changed since its last materialization (see module).

    Args:
        con: a connection to the offline database.
        store: the context of the definitions the view was materialized with.
        view: the view's kernels.
        scratch: a folder for a temporary key file.
    """
    registry = store.registry
    definition = registry.feature_views[view.name]
    rows = con.execute(f"SELECT end_us, manifest FROM {RUNS_TABLE} WHERE view = ?",
                       [view.name]).fetchall()
    spec = source_spec(registry, definition.source, store.offline_path)
    keys = registry.entities[definition.entity].keys
    if not rows:
        return Unmaterialized(frozenset(), f"'{view.name}' is not materialized", spec)
    end_us, recorded = rows[0]
    previous = SourceManifest.from_json(recorded)
    policy = registry.sources[definition.source].change_policy
    # A URL cannot be fingerprinted: compare as if it had not changed since the run.
    current = capture_manifest(spec, policy, store.base_dir, rebuild=True)
    changes = compare_manifests(definition.source, previous, current)
    materialized = dataclasses.replace(
        spec, segments=previous.segments if previous is not None else ())
    if changes.rebuild is not None:
        return Unmaterialized(frozenset(), changes.rebuild, materialized)
    source = ViewSource(dataclasses.replace(spec, segments=current.segments), store.base_dir,
                        keys, view.input_columns, view.string_columns)
    selects = new_data_keys(con, source, changes, None)
    selects += _pushed_from(con, source, materialized, end_us)
    if policy in ("append", "rewrite"):
        compute_checksums(con, source, end_us, end_us)
        try:
            selects.append(checksum_changes(con, view.name, definition.source, policy,
                                            len(keys)))
        except SourceError as error:
            return Unmaterialized(frozenset(), str(error), materialized)
    if not selects:
        return Unmaterialized(frozenset(), None, materialized)
    table = write_keys(con, selects, len(keys), scratch / f"unmaterialized-{view.name}.parquet")
    entities = frozenset(tuple(row.values()) for row in table.to_pylist())
    return Unmaterialized(entities, None, materialized)


def _pushed_from(con: duckdb.DuckDBPyConnection, source: ViewSource, materialized: SourceSpec,
                 end_us: int) -> list[str]:
    """The keys of entities with materialized segments holding events at or after the end."""
    if not materialized.segments:
        return []
    query = plan_events(con, materialized, source.base_dir, source.keys, (), (), end_us, None)
    keys = ", ".join(key_columns(len(source.keys)))
    return [f"SELECT {keys} FROM ({query.parts[-1][0]}) WHERE {TS_COLUMN} >= {int(end_us)}"]
