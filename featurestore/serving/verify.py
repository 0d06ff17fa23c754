"""Skew verification: online values must equal offline values (DESIGN §4.5).

For a sample of materialized entities and a few times `t >= T` (T the materialization
end), the features are computed twice: online, by a real lookup against the online
store's states, and offline, by the training kernels over the raw events before T. The
promise is that both agree to a relative 1e-9 (in practice bit for bit).

Entities with events the materialization did not fold are left out and counted:
pushed at or after T (their online state is ahead on purpose), or reached the record
since (a late push, a new file, a corrected table row: the next materialization
recomputes them). A source change that cannot be traced to entities (a rewritten file)
reports the view as stale. The states compared are those published, with the kernels
of the registry version that built them.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import InputError
from featurestore.offline import count_rows, read_partitions, suggest_partitions
from featurestore.offline.event_query import plan_events
from featurestore.offline.materialize import STATES_TABLE
from featurestore.offline.partition_tasks import FOUND, SPINE_TS, TrainingTask
from featurestore.offline.remote_partitions import RemoteRun, remote_run
from featurestore.offline.sources import SourceSpec
from featurestore.offline.unmaterialized import unmaterialized
from featurestore.online import decode_entity_key
from featurestore.online.published import (
    REGISTRY,
    check_view,
    dictionary_name,
    end_name,
    published_registry,
    state_name,
)
from featurestore.registry.state import registry_hash
from featurestore.serving.errors import NotMaterializedError, RequestError
from featurestore.serving.inputs import MAX_ENTITIES, lookup_time
from featurestore.serving.lookup import get_online_features, lookup_engine
from featurestore.serving.values import python_lists, python_values
from featurestore.times import format_micros
from transforms import CompiledView
from transforms.spec import ColumnType

if TYPE_CHECKING:
    from featurestore.context import StoreContext

RELATIVE_TOLERANCE = 1e-9
ALL = "all"
"""`verify(entities=ALL)` checks every entity with online state."""
_MINUTE, _HOUR, _DAY = 60_000_000, 3_600_000_000, 86_400_000_000
# Default lookup times after the end: at it, inside the shortest hops, across hour, day
# and week boundaries, and past a 30-day window.
DEFAULT_OFFSETS_US = (0, 90_000_000, _HOUR + 7 * _MINUTE, _DAY + _HOUR, 7 * _DAY, 45 * _DAY)


@dataclass(frozen=True)
class Mismatch:
    """One value that differs between the online and the offline path."""

    view: str
    feature: str
    entity: tuple
    at_us: int
    online: object
    offline: object

    def render(self) -> str:
        """One line naming the value and both results."""
        return (f"{self.view}:{self.feature} entity {self.entity!r} at "
                f"{format_micros(self.at_us)}: online {self.online!r}, offline {self.offline!r}")


@dataclass
class VerifyReport:
    """What `verify` compared and what differed.

    Attributes:
        entities: entities compared, per view.
        skipped: entities left out per view (pushed events after the end).
        times: the lookup times per view (microseconds).
        values: how many values were compared.
        mismatches: every differing value.
    """

    entities: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    times: dict[str, tuple[int, ...]] = field(default_factory=dict)
    values: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)
    registry_version: int | None = None

    @property
    def ok(self) -> bool:
        """True when nothing differs and no view is stale."""
        return not self.mismatches and not self.stale

    def render(self, limit: int = 20) -> str:
        """A readable account: per view what was compared, then up to `limit` mismatches."""
        lines = []
        if self.registry_version is not None:
            lines.append(f"online states of registry version {self.registry_version}")
        for view, count in self.entities.items():
            skipped = self.skipped.get(view, 0)
            note = (f" ({skipped} with events not yet materialized left out)" if skipped
                    else "")
            lines.append(f"{view}: {count} entities at {len(self.times[view])} times{note}")
        for view, reason in self.stale.items():
            lines.append(f"{view}: stale: {reason}; run `featurestore materialize`")
        if not self.mismatches:
            lines.append(f"online == offline for all {self.values:,} values")
            return "\n".join(lines)
        lines.append(f"{len(self.mismatches):,} of {self.values:,} values differ:")
        lines.extend(f"  {mismatch.render()}" for mismatch in self.mismatches[:limit])
        if len(self.mismatches) > limit:
            lines.append(f"  ... and {len(self.mismatches) - limit:,} more")
        return "\n".join(lines)


def verify(store: StoreContext, entities: int | str = 100,
           at: Sequence[object] | object = None, seed: int = 0,
           engine: str | None = None) -> VerifyReport:
    """Compare online and offline feature values for sampled (or all) entities.

    What is compared is what the online store serves: its states, with the kernels of
    the registry version that built them (which may be older than the registry file,
    when a newer version is applied but not materialized).

    Args:
        store: the feature store's context.
        entities: how many entities to sample per feature view, or "all" for every
            entity with online state.
        at: lookup times (one or a list of datetimes or ISO-8601 strings), each at or
            after the materialization end; default: the end and a few times after it.
        seed: the sample's seed.
        engine: where the offline side's partitions run (None: $FEATURESTORE_ENGINE,
            else the registry's `store.engine`).

    Returns:
        The report; `report.ok` tells whether everything matched and nothing is stale.

    Raises:
        NotMaterializedError: nothing is materialized.
        InputError: `entities` is neither a positive count nor "all".
        RequestError: a time before the materialization end.
    """
    if entities != ALL and (not isinstance(entities, int) or isinstance(entities, bool)
                            or entities < 1):
        raise InputError(f"entities: expected a positive number or 'all', got {entities!r}")
    published = published_registry(store.online_store().read([], [REGISTRY]).metadata)
    if published is not None and published.registry_hash != registry_hash(store.registry_text):
        store = store.for_definitions(published.registry(), published.text,
                                      published.column_types())
    expected = lookup_engine(store).state_keys
    views = list(store.registry.feature_views)
    names = [name for view in views
             for name in (state_name(view), end_name(view), dictionary_name(view))]
    metadata = store.online_store().read([], names)
    if metadata.version is None:
        raise NotMaterializedError("nothing is materialized: run `featurestore materialize`")
    requested = [] if at is None else list(at) if isinstance(at, list | tuple) else [at]
    report = VerifyReport(registry_version=published.version if published else None)
    with remote_run(store, store.executor(engine), store.kernels()) as remote:
        for view in views:
            end = check_view(metadata.metadata, view, expected[view])
            times = _times(end, requested)
            blob = metadata.metadata[dictionary_name(view)]
            dictionaries = orjson.loads(blob) if blob else {}
            _verify_view(store, view, (end, times), dictionaries, (entities, seed), report,
                         remote)
    return report


def _times(end: int, requested: list[object]) -> tuple[int, ...]:
    if not requested:
        return tuple(end + offset for offset in DEFAULT_OFFSETS_US)
    times = tuple(sorted({lookup_time(moment) for moment in requested}))
    if times[0] < end:
        raise RequestError("time_before_materialization",
                           f"verify time {format_micros(times[0])} is before the materialization "
                           f"end {format_micros(end)}")
    return times


def _verify_view(store: StoreContext, view: str, moments: tuple[int, tuple[int, ...]],
                 dictionaries: dict[str, list[str]], sampling: tuple[int | str, int],
                 report: VerifyReport, remote: RemoteRun | None) -> None:
    end, times = moments
    sample_size, seed = sampling
    registry = store.registry
    keys = registry.entities[registry.feature_views[view].entity].keys
    compiled = store.kernels().views[view]

    def offline(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple], int, np.ndarray | None]:
        with tempfile.TemporaryDirectory(prefix="featurestore-verify-") as scratch:
            pending = unmaterialized(con, store, compiled, Path(scratch))
        if pending.stale is not None:
            report.stale[view] = pending.stale
            return [], 0, None
        sample = _sample_keys(con, view, sample_size, seed)
        kept = [key for key in sample if key not in pending.entities]
        values = _offline_values(con, store, view, pending.spec, kept, (end, times),
                                 dictionaries, remote)
        return kept, len(sample) - len(kept), values

    kept, skipped, offline_values = store.offline_database().run(offline)
    if offline_values is None:
        return
    report.entities[view], report.skipped[view], report.times[view] = len(kept), skipped, times
    names = compiled.feature_names
    for t_index, at_us in enumerate(times):
        online = _online_values(store, view, keys, kept, at_us)
        blocks = compiled.split_features(offline_values[compiled.rows_of(names), :, t_index],
                                         names)
        for feature, block in blocks.items():
            kind = compiled.feature_types[feature]
            column = compiled.string_feature_columns.get(feature)
            dictionary = dictionaries.get(column) if column else None
            plan = compiled.list_features.get(feature)
            expected = (python_values(block.tolist(), kind, dictionary) if plan is None else
                        python_lists(block.tolist(), kind, dictionary, plan.ranked))
            got = online[f"{view}__{feature}"]
            for key, online_value, offline_value in zip(kept, got, expected, strict=True):
                report.values += 1
                if not _same(online_value, offline_value, kind):
                    report.mismatches.append(
                        Mismatch(view, feature, key, at_us, online_value, offline_value))


def _sample_keys(con: duckdb.DuckDBPyConnection, view: str, size: int | str,
                 seed: int) -> list[tuple]:
    """Entity keys drawn from the materialized states of a view (all of them for "all"),
    in a stable order."""
    rows = con.execute(f"SELECT entity FROM {STATES_TABLE} WHERE view = ?", [view]).fetchall()
    keys = sorted((decode_entity_key(bytes(row[0])) for row in rows), key=repr)
    if size == ALL:
        return keys
    return random.Random(seed).sample(keys, min(int(size), len(keys)))


def _offline_values(con: duckdb.DuckDBPyConnection, store: StoreContext, view: str,
                    spec: SourceSpec, sample: list[tuple], moments: tuple[int, tuple[int, ...]],
                    dictionaries: dict[str, list[str]],
                    remote: RemoteRun | None) -> np.ndarray:
    """Training values from the raw events before `end` that the materialization read
    (`spec` pins its pushed segments): float64 [output rows, keys, times].

    `dictionaries` are the online ones, so string codes agree; values they lack are
    appended to them in place. With `remote`, each partition runs on its executor.
    """
    end, times = moments
    registry, compiled = store.registry, store.kernels().views[view]
    keys = registry.entities[registry.feature_views[view].entity].keys
    out = np.full((compiled.output_rows, len(sample), len(times)), np.nan)
    if not sample:
        return out
    wanted = pa.table({key: [entity[i] for entity in sample] for i, key in enumerate(keys)})
    found = np.zeros(len(sample), dtype=bool)
    for name in compiled.string_columns:
        dictionaries.setdefault(name, [])
    count = suggest_partitions(count_rows(con, spec, store.base_dir))
    if remote is not None:
        found = _remote_offline_values(con, remote, compiled, spec, wanted, (end, times),
                                       dictionaries, count, out)
        _fill_unseen(compiled, times, found, out)
        return out
    partitions = read_partitions(
        con, spec, store.base_dir, keys, compiled.input_columns, compiled.string_columns,
        dictionaries, None, end, count)
    for part in partitions:
        ids = part.entities_of(wanted)
        rows = np.flatnonzero(ids >= 0)
        if not len(rows):
            continue
        found[rows] = True
        query_entity = np.repeat(ids[rows], len(times))
        query_ts = np.tile(np.asarray(times, dtype=np.int64), len(rows))
        order = np.lexsort((query_ts, query_entity))
        values = compiled.training_values(part.entity, np.array(part.ts), part.columns,
                                          dictionaries, query_entity[order], query_ts[order])
        unordered = np.empty_like(values)
        unordered[:, order] = values
        out[:, rows, :] = unordered.reshape(compiled.output_rows, len(rows), len(times))
    _fill_unseen(compiled, times, found, out)
    return out


def _remote_offline_values(con: duckdb.DuckDBPyConnection, remote: RemoteRun,
                           compiled: CompiledView, spec: SourceSpec, wanted: pa.Table,
                           moments: tuple[int, tuple[int, ...]],
                           dictionaries: dict[str, list[str]], partitions: int,
                           out: np.ndarray) -> np.ndarray:
    """`_offline_values`' partition loop on the workers: every partition's task gets
    each sampled entity at each time (entity-major, as the local loop orders its
    queries) and computes the rows of the entities it holds. Returns which sampled
    entities some partition held."""
    end, times = moments
    view = compiled.name
    query = plan_events(con, spec, remote.base_dir, wanted.column_names,
                        compiled.input_columns, compiled.string_columns, None, end)
    reads = remote.partition_reads(con, spec, query, dictionaries, partitions)
    count, steps = wanted.num_rows, len(times)
    spine = wanted.take(np.repeat(np.arange(count), steps)).append_column(
        SPINE_TS, pa.array(np.tile(np.asarray(times, dtype=np.int64), count), pa.int64()))
    spine_file = remote.file(f"verify-{view}")
    pq.write_table(spine, spine_file)
    features = tuple(range(compiled.output_rows))
    tasks = [TrainingTask(remote.kernels, view, read, spine_file, features, True,
                          remote.file(f"verify-{view}-{read.partition}"))
             for read in reads]
    found = np.zeros(count, dtype=bool)
    for path in remote.executor.run(tasks, "verify"):
        part = pq.read_table(path)
        held = part.column(FOUND).to_numpy(zero_copy_only=False).reshape(count, steps)[:, 0]
        for index in features:
            values = part.column(f"f{index}").to_numpy().reshape(count, steps)
            out[index, held, :] = values[held]
        found |= held
    return found


def _fill_unseen(compiled: CompiledView, times: tuple[int, ...], found: np.ndarray,
                 out: np.ndarray) -> None:
    """A sampled entity without events before the end gets an empty window's values."""
    missing = np.flatnonzero(~found)
    if len(missing):
        empty = np.stack([compiled.values_from_states([None], t)[:, 0] for t in times], axis=1)
        out[:, missing, :] = empty[:, None, :]


def _online_values(store: StoreContext, view: str, keys: Sequence[str], sample: list[tuple],
                   at_us: int) -> dict[str, list]:
    """Every feature of `view` for the sampled entities, by real lookups at `at_us`."""
    names = list(store.registry.feature_views[view].features)
    features = [f"{view}:{name}" for name in names]
    columns: dict[str, list] = {f"{view}__{name}": [] for name in names}
    for start in range(0, len(sample), MAX_ENTITIES):
        chunk = sample[start : start + MAX_ENTITIES]
        entities = {key: [entity[i] for entity in chunk] for i, key in enumerate(keys)}
        answer = get_online_features(store, features=features, entities=entities,
                                     at=format_micros(at_us), full_names=True)
        for name, values in answer.items():
            columns.setdefault(name, []).extend(values)
    return columns


def _same(online: object, offline: object, kind: ColumnType) -> bool:
    if online is None or offline is None:
        return online is None and offline is None
    if isinstance(online, list) and isinstance(offline, list):
        # List features (top_k entries are {value, count} dicts, compared whole).
        return len(online) == len(offline) and all(
            _same(a, b, kind) for a, b in zip(online, offline, strict=True))
    numeric = kind in (ColumnType.FLOAT, ColumnType.INT)
    if numeric and isinstance(online, int | float) and isinstance(offline, int | float):
        return math.isclose(online, offline, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)
    return online == offline
