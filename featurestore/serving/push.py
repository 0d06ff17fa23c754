"""Push: new events reach the online states without a materialization (DESIGN §4.6).

Order of work, and why:

1. The rows are validated against the source's schema (exact conversions or an error).
2. One metadata read checks the online store answers and was loaded by these kernels,
   so a push that cannot reach the online store fails before anything is stored and
   can be retried safely.
3. The rows are appended durably as a Parquet segment of the source. That file is the
   record: training sets and every later materialization read it, so a Redis that
   restarts empty loses nothing. Segments are plain files, written without the DuckDB
   file, so pushes run while a materialization holds DuckDB's write lock. The
   segment's footer records who pushed (`push_audit`), in the same atomic write.
4. For every feature view on the source, the rows are folded into the states of their
   entities by `CompiledView.update_states`, inside one `OnlineStore.update_many` per
   batch: an atomic read-modify-write, retried on conflict, so concurrent pushes for one
   entity lose nothing. Strings the view's dictionary lacks are appended to it in the
   same update, since the new codes live in the states written with it. Each state's
   newest event time (`online.stored_states`) moves forward in the same update.

With nothing published yet (a fresh or emptied online store) step 4 is skipped: the
events are in the segment and the next materialization loads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.errors import (
    InputError,
    NotMaterializedError,
    OnlineStoreUnavailable,
    RegistryMismatchError,
)
from featurestore.offline import append_segment, validate_rows
from featurestore.offline.push_audit import PushOrigin, audit_metadata
from featurestore.online import OnlineStore
from featurestore.online.event_folding import ViewBatch, fold_batch, prepare_batch
from featurestore.online.published import (
    STATE_FORMAT,
    check_view,
    dictionary_name,
    end_name,
    state_name,
)
from featurestore.online.stored_states import has_newest_times, split_values
from featurestore.registry import Registry
from featurestore.registry.suggestions import did_you_mean
from featurestore.serving.errors import RequestError
from featurestore.validation.push_checks import check_pushed_rows
from featurestore.view_states import compiled_state_keys
from transforms import CompiledGraph, CompiledView
from transforms.spec import ColumnType

if TYPE_CHECKING:
    from featurestore.context import StoreContext

ROWS_PER_UPDATE = 5000
"""Rows folded per atomic update: bounds the keys one transaction watches and writes."""


@dataclass(frozen=True)
class PushResult:
    """What a push did.

    Attributes:
        source: the source the rows belong to.
        rows: how many rows were stored.
        segment: the durable Parquet segment holding them (None for an empty push).
        online: True when the online states include the rows; False when nothing is
            materialized yet (the next materialization loads them from the segment).
        entities: how many (view, entity) states were updated.
        warnings: broken `on_fail: warn` expectations of the rows (they were kept).
    """

    source: str
    rows: int
    segment: Path | None
    online: bool
    entities: int
    warnings: tuple[str, ...] = ()


def push(store: StoreContext, source: str, rows: object,
         origin: PushOrigin | None = None) -> PushResult:
    """Ingest events of a source: durably, then into the online states.

    Args:
        store: the feature store.
        source: a source read by at least one feature view.
        rows: a pandas or polars DataFrame, an Arrow table, a list of dicts or a dict of
            columns, with the source's columns (absent ones are null; the timestamp and
            entity keys are required).
        origin: how the push came, for its audit record (default: the SDK).

    Returns:
        What was stored and whether the online store took it.

    Raises:
        RequestError: unknown source, or rows that do not match its schema (code
            ``unknown_source`` or ``invalid_rows``).
        PushExpectationError: a row breaks a source expectation whose policy is fail
            or quarantine (code ``expectation_failed``; nothing is stored).
        RegistryMismatchError: the online store was loaded by other definitions
            (nothing is stored).
        OnlineStoreUnavailable: the online store cannot be reached before the rows were
            stored (nothing is stored: retry), or failed after (the message says they are
            kept: do not retry).
    """
    registry, kernels = store.registry, store.kernels()
    views = _views_of(registry, kernels, source)
    table = _validated(registry, kernels, source, rows)
    if table.num_rows == 0:
        return PushResult(source, 0, None, online=False, entities=0)
    # Expectations before anything is stored: a refused push leaves no trace.
    warnings = tuple(check_pushed_rows(registry, source, table))
    online = store.online_store()
    expected = compiled_state_keys(registry, kernels)
    published = _check_online(online, views, expected)
    audit = audit_metadata(origin or PushOrigin(), source, table.num_rows)
    segment = append_segment(store.offline_path.parent, source, table, audit)
    if not published:
        return PushResult(source, table.num_rows, segment, online=False, entities=0,
                          warnings=warnings)
    try:
        folded = _fold_into_states(online, kernels, registry, views, table, source, expected)
    except (OnlineStoreUnavailable, RegistryMismatchError, NotMaterializedError) as error:
        # The rows are on disk already: a retry would store them twice.
        raise type(error)(
            f"{error}; the {table.num_rows} rows are stored ({segment.name}) and reach the "
            "online store with the next materialization: do not push them again"
        ) from error
    return PushResult(source, table.num_rows, segment, online=folded is not None,
                      entities=folded or 0, warnings=warnings)


def _views_of(registry: Registry, kernels: CompiledGraph, source: str) -> list[CompiledView]:
    if not isinstance(source, str) or source not in registry.sources:
        hint = did_you_mean(str(source), registry.sources)
        raise RequestError("unknown_source", f"unknown source {source!r}{hint}")
    views = [kernels.views[name] for name, view in registry.feature_views.items()
             if view.source == source]
    if not views:
        raise RequestError(
            "unknown_source", f"source '{source}' feeds no feature view: nothing would use the rows"
        )
    return views


def _validated(registry: Registry, kernels: CompiledGraph, source: str, rows: object) -> pa.Table:
    keys: dict[str, None] = {}
    for view in registry.feature_views.values():
        if view.source == source:
            keys.update(dict.fromkeys(registry.entities[view.entity].keys))
    if isinstance(rows, Mapping) and not all(
            isinstance(values, Sized) and not isinstance(values, str | bytes)
            for values in rows.values()):
        raise RequestError("invalid_rows", f"push to '{source}': a dict of columns must map "
                                           "each column to a list of values")
    try:
        definition = registry.sources[source]
        return validate_rows(rows, kernels.graph.spec.schema(source), definition.timestamp,
                             list(keys), source_name=source,
                             timestamp_unit=definition.timestamp_unit)
    except InputError as error:
        raise RequestError("invalid_rows", str(error)) from None


def _check_online(online: OnlineStore, views: Sequence[CompiledView],
                  expected: Mapping[str, str]) -> bool:
    """Whether a version is published; refuses states built by other definitions."""
    result = online.read([], [name for view in views
                              for name in (state_name(view.name), end_name(view.name))])
    if result.version is None:
        return False
    for view in views:
        check_view(result.metadata, view.name, expected[view.name])
    return True


def _fold_into_states(
    online: OnlineStore,
    kernels: CompiledGraph,
    registry: Registry,
    views: Sequence[CompiledView],
    table: pa.Table,
    source: str,
    expected: Mapping[str, str],
) -> int | None:
    """Fold the rows into the published states, batch by batch; None if none is published.

    Rows are ordered by time first, so a batch boundary never puts an entity's later
    event before an earlier one.
    """
    timestamp = registry.sources[source].timestamp
    table = table.take(pc.sort_indices(table, [(timestamp, "ascending")]))
    schema = kernels.graph.spec.schema(source)
    metadata = [name for view in views for name in
                (state_name(view.name), end_name(view.name), dictionary_name(view.name))]
    metadata.append(STATE_FORMAT)
    updated = 0
    for start in range(0, table.num_rows, ROWS_PER_UPDATE):
        chunk = table.slice(start, ROWS_PER_UPDATE)
        batches = [
            prepare_batch(view,
                          registry.entities[registry.feature_views[view.name].entity].keys,
                          timestamp, chunk)
            for view in views
        ]
        requests = [(batch.view.name, key) for batch in batches for key in batch.keys]

        def fold(
            states: list[bytes | None],
            stored: dict[str, bytes | None],
            batches: list[ViewBatch] = batches,
        ) -> tuple[list[bytes | None], dict[str, bytes]]:
            return _fold(states, stored, batches, schema, expected)

        if not online.update_many(requests, fold, metadata):
            return None
        updated += len(requests)
    return updated


def _fold(
    states: list[bytes | None],
    stored: dict[str, bytes | None],
    batches: Sequence[ViewBatch],
    schema: dict[str, ColumnType],
    expected: Mapping[str, str],
) -> tuple[list[bytes | None], dict[str, bytes]]:
    """The update function: new states (and grown dictionaries) from the current ones.

    Pure, as `update_many` requires: it may run again after a conflict.
    """
    # A materialization of other definitions may have been published since the check.
    ends = {batch.view.name: check_view(stored, batch.view.name, expected[batch.view.name])
            for batch in batches}
    new_states: list[bytes | None] = []
    new_metadata: dict[str, bytes] = {}
    framed = has_newest_times(stored)
    offset = 0
    for batch in batches:
        view = batch.view
        old, old_newest = split_values(states[offset : offset + len(batch.keys)], framed)
        offset += len(batch.keys)
        blob = stored[dictionary_name(view.name)]
        dictionaries: dict[str, list[str]] = orjson.loads(blob) if blob else {}
        values, grown = fold_batch(batch, old, old_newest, dictionaries, schema,
                                   ends[view.name], framed)
        new_states.extend(values)
        if grown:
            new_metadata[dictionary_name(view.name)] = orjson.dumps(dictionaries)
    return new_states, new_metadata
