"""Pushed events at or after a materialization's end, folded into the states it
publishes.

A materialization folds events before its end T into the states it keeps and publishes.
Events pushed with a time at or after T were folded into the online states by their
push, but they are not in the stored states, so publishing those alone would drop
them from the online store until a later run's end passed them: a lookup would then
miss events a push had acknowledged, and differ from the training set of the same
entity and time. So the publication folds them in again, from the pushed segments the
run read (the same rows, in the same order, by the same `update_states` a push uses),
and grows the published dictionaries by their new strings as a push would. The stored
states stay as they are: to the offline tables those events are still newer than T.

A push whose segment the run did not read (one that arrived while it ran) is not
folded: its events reach the online store with the next materialization.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.offline.manifest import SourceManifest
from featurestore.offline.timestamps import epoch_micros
from featurestore.online.entity_keys import encode_entity_key
from featurestore.online.event_folding import fold_batch, prepare_batch
from featurestore.online.published import ViewPublication

if TYPE_CHECKING:
    from featurestore.context import StoreContext

FoldedStates = dict[tuple[str, bytes], bytes]
"""(view, encoded entity key) → the stored value (state and newest time) to publish."""


def fold_pushed_after_end(
    con: duckdb.DuckDBPyConnection, store: StoreContext, views: Sequence[ViewPublication],
    states_table: str, runs_table: str,
) -> tuple[FoldedStates, list[ViewPublication]]:  # fmt: skip
    """The states to publish instead of the stored ones, and the publications with
    their dictionaries grown by the pushed strings.

    Args:
        con: the offline file, inside the publication's read.
        store: the feature store (its registry and kernels).
        views: what each view publishes (end and dictionaries from the runs table).
        states_table, runs_table: the tables of stored states and of view runs.
    """
    registry, kernels = store.registry, store.kernels()
    manifests = dict(con.execute(f"SELECT view, manifest FROM {runs_table}").fetchall())
    folded: FoldedStates = {}
    published = []
    for publication in views:
        view = kernels.views.get(publication.view)
        definition = registry.feature_views.get(publication.view)
        manifest = SourceManifest.from_json(manifests.get(publication.view))
        rows = None
        if view is not None and definition is not None and manifest is not None:
            timestamp = registry.sources[definition.source].timestamp
            rows = _rows_from(manifest.segments, timestamp, publication.end_us)
        if rows is None or view is None or definition is None:
            published.append(publication)
            continue
        batch = prepare_batch(view, registry.entities[definition.entity].keys, timestamp, rows)
        encoded = [encode_entity_key(key) for key in batch.keys]
        stored = _stored(con, states_table, publication.view, encoded)
        old = [stored.get(key, (None, None)) for key in encoded]
        dictionaries: dict[str, list[str]] = orjson.loads(publication.dictionaries or "{}")
        values, grown = fold_batch(batch, [state for state, _ in old],
                                   [newest for _, newest in old], dictionaries,
                                   kernels.graph.spec.schema(definition.source),
                                   publication.end_us)
        for key, value in zip(encoded, values, strict=True):
            if value is not None:
                folded[publication.view, key] = value
        if grown:
            publication = dataclasses.replace(publication,
                                              dictionaries=orjson.dumps(dictionaries).decode())
        published.append(publication)
    return folded, published


def _rows_from(segments: Sequence[str], timestamp: str, end_us: int) -> pa.Table | None:
    """The rows of the segments timed at or after `end_us`, sorted by time (None: none)."""
    tables = []
    for path in segments:
        table = pq.read_table(path)
        keep = pa.array(epoch_micros(table.column(timestamp)) >= end_us)
        if keep.true_count:
            tables.append(table.filter(keep))
    if not tables:
        return None
    # Segments written before the source gained a column lack it: nulls, as offline.
    rows = pa.concat_tables(tables, promote_options="default")
    return rows.sort_by([(timestamp, "ascending")])


def _stored(con: duckdb.DuckDBPyConnection, states_table: str, view: str,
            keys: list[bytes]) -> dict[bytes, tuple[bytes, int | None]]:
    """The stored state and newest time of each of these entities that has one."""
    wanted = pa.table({"entity": pa.array(keys, pa.binary())})
    con.register("pushed_entities", wanted)
    try:
        rows = con.execute(
            f"SELECT s.entity, s.state, s.newest_us FROM {states_table} s "
            "JOIN pushed_entities w ON s.entity = w.entity WHERE s.view = ?", [view]).fetchall()
    finally:
        con.unregister("pushed_entities")
    return {bytes(entity): (bytes(state), newest) for entity, state, newest in rows}
