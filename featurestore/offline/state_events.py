"""Feature values recomputed from the raw events behind one published online state.

A view's published state holds the events its materialization read before its end T
(the source's files as recorded in the run's manifest, the pushed segments it pinned),
the pinned pushed events at or after T (`pushed_after_end` folds them in when it
publishes), and every event pushed after the publication that reached it. `state_values`
reads exactly those events with the offline reader (`events.read_partitions`, in its
order) for a few entities and computes their features at given times with the training
kernels, so a value an online lookup served can be checked against the offline engine
(`replay.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from featurestore.compilation import source_spec
from featurestore.offline import count_rows, read_partitions, suggest_partitions
from featurestore.offline.events import EventPartition
from featurestore.offline.manifest import SourceManifest
from featurestore.offline.sources import SourceSpec
from transforms import CompiledView

if TYPE_CHECKING:
    from featurestore.context import StoreContext


@dataclasses.dataclass(frozen=True)
class StateEvents:
    """Which events one published state of a view holds.

    Attributes:
        view: the feature view.
        end_us: its materialization end T.
        manifest: what the run read (files and pinned pushed segments).
        later_segments: pushed segments that reached the state after it was published.
    """

    view: str
    end_us: int
    manifest: SourceManifest
    later_segments: tuple[str, ...] = ()


def state_values(con: duckdb.DuckDBPyConnection, store: StoreContext, events: StateEvents,
                 entities: Sequence[tuple], times: Sequence[int],
                 dictionaries: dict[str, list[str]]) -> np.ndarray:
    """Training values of `entities[i]` at `times[i]` over the events of a state.

    Args:
        con: the offline file.
        store: the context of the definitions that built the state.
        events: the state's events.
        entities: one entity key tuple per query.
        times: one lookup time per query (microseconds).
        dictionaries: string column → values; codes of strings they lack are appended.

    Returns:
        float64 [output rows, queries] (`CompiledView.training_values`), NaN for null.
    """
    compiled = store.kernels().views[events.view]
    registry = store.registry
    keys = registry.entities[registry.feature_views[events.view].entity].keys
    out = np.full((compiled.output_rows, len(entities)), np.nan)
    if not len(entities):
        return out
    distinct = list(dict.fromkeys(entities))
    wanted = pa.table({key: [entity[i] for entity in distinct] for i, key in enumerate(keys)})
    for name in compiled.string_columns:
        dictionaries.setdefault(name, [])
    spec = source_spec(registry, registry.feature_views[events.view].source,
                       store.offline_path)
    segments = (*events.manifest.segments, *events.later_segments)
    files = tuple(file.path for file in events.manifest.files) if spec.path else ()
    # Before the end: the source as the run read it, with every pushed segment.
    before = dataclasses.replace(spec, segments=segments, files=files or None)
    parts = [_read(con, store, before, keys, compiled, dictionaries, None, events.end_us)]
    if segments:
        # At or after the end: only pushed events reached the state.
        pushed = dataclasses.replace(spec, path=segments[0], table=None, query=None,
                                     files=segments, segments=(), pushed_dir=None,
                                     cached=None, timestamp_unit=None)
        parts.append(_read(con, store, pushed, keys, compiled, dictionaries, events.end_us,
                           None))
    entity, ts, columns = _entity_events(parts, wanted, compiled.input_columns)
    order = np.lexsort([*(columns[name] for name in reversed(_ordered(compiled))), ts, entity])
    entity, ts = entity[order], ts[order]
    columns = {name: np.ascontiguousarray(values[order]) for name, values in columns.items()}
    index = {key: i for i, key in enumerate(distinct)}
    query_entity = np.array([index[key] for key in entities], dtype=np.int64)
    query_ts = np.asarray(times, dtype=np.int64)
    has_events = np.isin(query_entity, entity)
    rows = np.flatnonzero(has_events)
    if len(rows):
        query_order = rows[np.lexsort((query_ts[rows], query_entity[rows]))]
        out[:, query_order] = compiled.training_values(
            entity, ts, columns, dictionaries, query_entity[query_order], query_ts[query_order])
    for row in np.flatnonzero(~has_events):
        # An entity without events in the state: an empty window, as online.
        out[:, row] = compiled.values_from_states([None], int(query_ts[row]))[:, 0]
    return out


def _ordered(compiled: CompiledView) -> list[str]:
    """Value columns in the offline reader's tie order: numbers first, then strings."""
    strings = set(compiled.string_columns)
    columns = list(compiled.input_columns)
    return [name for name in columns if name not in strings] + [
        name for name in columns if name in strings]


def _read(con: duckdb.DuckDBPyConnection, store: StoreContext, spec: SourceSpec,
          keys: Sequence[str], compiled: CompiledView, dictionaries: dict[str, list[str]],
          start_us: int | None, end_us: int | None) -> Iterator[EventPartition]:
    """One partition at a time: only the wanted entities' events are kept from each."""
    partitions = suggest_partitions(count_rows(con, spec, store.base_dir))
    return read_partitions(con, spec, store.base_dir, keys, compiled.input_columns,
                           compiled.string_columns, dictionaries, start_us, end_us,
                           partitions, prefetch=False)


def _entity_events(parts: Sequence[Iterable[EventPartition]], wanted: pa.Table,
                   names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The events of the wanted entities, numbered by their row in `wanted` (unsorted)."""
    entity: list[np.ndarray] = []
    ts: list[np.ndarray] = []
    columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for partitions in parts:
        for part in partitions:
            ids = part.entities_of(wanted)
            for row in np.flatnonzero(ids >= 0):
                # A partition is sorted by entity: each entity's events are one run.
                start, stop = np.searchsorted(part.entity, [ids[row], ids[row] + 1])
                entity.append(np.full(stop - start, row, dtype=np.int64))
                ts.append(part.ts[start:stop])
                for name in names:
                    columns[name].append(part.columns[name][start:stop])
    if not entity:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64),
                {name: np.zeros(0) for name in names})
    return (np.concatenate(entity), np.concatenate(ts).astype(np.int64),
            {name: np.concatenate(values) for name, values in columns.items()})
