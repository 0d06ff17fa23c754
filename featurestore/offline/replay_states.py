"""Which events each online state a logged lookup read held, for `replay`.

A state is named by its view and the online version it was published in. The published
version's states are described by the online store's metadata and the offline file's
last runs; every version, the published one included, by the record each publication
leaves (`publications.py`). The kernels are those of the registry version that built
the state, compiled once per version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import orjson

from featurestore.compilation import read_schemas, source_spec
from featurestore.errors import FeatureStoreError
from featurestore.offline.manifest import SourceManifest, capture_manifest, compare_manifests
from featurestore.offline.materialize import RUNS_TABLE
from featurestore.offline.publications import PublishedState, published_states
from featurestore.offline.segments import segment_time_ns
from featurestore.offline.sources import pushed_segments
from featurestore.offline.state_events import StateEvents
from featurestore.online.published import end_name, state_name
from featurestore.registry import Registry
from featurestore.registry.state import STATE_TABLE, table_exists

if TYPE_CHECKING:
    from featurestore.context import StoreContext

REPLACED = ("state version replaced by a later materialization, and its end and events "
            "are not recorded (published before publications were recorded)")
_VERSION_TIME = re.compile(r"m(\d+)-")


@dataclass(frozen=True)
class ReplayState:
    """One view's state in one published version, ready to recompute from.

    Attributes:
        context: the definitions (and kernels) that built it.
        events: the events it holds (before the end, and pushed ones).
        later_times: write times (µs, ascending) of `events.later_segments`: a lookup
            logged at t read the first `bisect(later_times, t)` of them.
        dictionaries: the string dictionaries its run stored.
    """

    context: StoreContext
    events: StateEvents
    later_times: list[int]
    dictionaries: dict[str, list[str]]


class ReplayStates:
    """Resolves (view, version) to a `ReplayState`, or to why it cannot be replayed.

    Args:
        store: the feature store's context.
        current: the context of the registry the published version was built with.
        current_registry: that registry's applied version number (None: unknown).
        version: the published online version.
        metadata: its state and end metadata of every view of `current`.
        versions: every version the log names.
    """

    def __init__(self, store: StoreContext, current: StoreContext,
                 current_registry: int | None, version: str,
                 metadata: Mapping[str, bytes | None], versions: Iterable[str]) -> None:
        self._store = store
        self._version = version
        self._metadata = metadata
        self._contexts: dict[int | None, StoreContext | None] = {current_registry: current}
        self._current = current
        self._resolved: dict[tuple[str, str], ReplayState | str] = {}
        wanted = sorted(set(versions) | {version})

        def read(con: duckdb.DuckDBPyConnection) -> tuple[dict, dict, dict]:
            runs = {}
            if table_exists(con, RUNS_TABLE):
                runs = {row[0]: row[1:] for row in con.execute(
                    f"SELECT view, state_key, end_us, dictionaries, manifest FROM {RUNS_TABLE}"
                ).fetchall()}
            applied = {}
            if table_exists(con, STATE_TABLE):
                applied = {row[0]: row[1:] for row in con.execute(
                    f"SELECT version, registry_text, definition FROM {STATE_TABLE}").fetchall()}
            return runs, published_states(con, wanted), applied

        self._runs, self._published, self._applied = store.offline_database().run(
            read, read_only=True)

    def context(self, registry_version: int | None) -> StoreContext | None:
        """The context of an applied registry version (None: not recorded)."""
        if registry_version not in self._contexts:
            self._contexts[registry_version] = self._compile(registry_version)
        return self._contexts[registry_version]

    def state(self, view: str, version: str) -> ReplayState | str:
        """The state of `view` in `version`, or the reason it cannot be replayed."""
        key = (view, version)
        if key not in self._resolved:
            try:
                self._resolved[key] = self._resolve(view, version)
            except FeatureStoreError as error:
                self._resolved[key] = f"the state of '{view}' cannot be rebuilt: {error}"
        return self._resolved[key]

    def _resolve(self, view: str, version: str) -> ReplayState | str:
        record = self._published.get((version, view))
        if version == self._version:
            return self._current_state(view, record)
        if record is None:
            return REPLACED
        context = self.context(record.registry_version)
        if context is None:
            return (f"registry version {record.registry_version}, which built the state, is "
                    "not in the offline file")
        return self._state(context, view, version, record.end_us, record.manifest,
                           record.dictionaries)

    def _current_state(self, view: str, record: PublishedState | None) -> ReplayState | str:
        key, end = self._metadata.get(state_name(view)), self._metadata.get(end_name(view))
        if key is None or end is None:
            return f"feature view '{view}' is not in the published state"
        if record is not None:
            return self._state(self._current, view, self._version, record.end_us,
                               record.manifest, record.dictionaries)
        # Published before publications were recorded: the last run, if it is this state.
        run = self._runs.get(view)
        if run is None or run[0] != key.decode() or run[1] != int(end):
            return (f"the offline file's last run of '{view}' is not the published state (a "
                    "materialization in progress, or one not published)")
        return self._state(self._current, view, self._version, int(end),
                           SourceManifest.from_json(run[3]), orjson.loads(run[2]))

    def _state(self, context: StoreContext, view: str, version: str, end_us: int,
               manifest: SourceManifest | None, dictionaries: dict[str, list[str]]
               ) -> ReplayState | str:
        registry = context.registry
        definition = registry.feature_views.get(view)
        if definition is None or manifest is None:
            return f"no record of what the run of '{view}' read"
        spec = source_spec(registry, definition.source, context.offline_path)
        policy = registry.sources[definition.source].change_policy
        changes = compare_manifests(definition.source, manifest, capture_manifest(
            spec, policy, context.base_dir, rebuild=True))
        if changes.rebuild is not None:
            return f"{changes.rebuild}: the events of the state are gone"
        published_at = _version_time(version)
        pinned = set(manifest.segments)
        # Pushes written after the publication reached the state (until it was replaced,
        # which is after every lookup that read it).
        later = sorted((segment_time_ns(path) // 1000, str(path))
                       for path in pushed_segments(spec, context.base_dir)
                       if str(path) not in pinned
                       and segment_time_ns(path) // 1000 >= published_at)
        events = StateEvents(view, end_us, manifest, tuple(path for _, path in later))
        return ReplayState(context, events, [time for time, _ in later], dict(dictionaries))

    def _compile(self, registry_version: int | None) -> StoreContext | None:
        row = self._applied.get(registry_version)
        if row is None:
            return None
        text, definition = row
        registry = Registry.model_validate_json(definition)
        store = self._store
        schemas = store.offline_database().run(lambda con: read_schemas(
            con, registry, store.base_dir, store.offline_path), read_only=True)
        return store.for_definitions(registry, text, schemas)


def _version_time(version: str) -> int:
    """When a version was published, from its name (`materialize.load_online`)."""
    found = _VERSION_TIME.match(version)
    return int(found.group(1)) if found else 0
