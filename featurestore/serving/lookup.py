"""Online lookups: feature values for entities at a time, from the online store's states.

A lookup is one `OnlineStore.read` (the state of every entity in every needed view,
plus the metadata that checks and decodes them, from one published version), then the
compiled kernels: `values_from_states` merges each state's tiles at the lookup time and
`evaluate` computes request features, the same functions the offline path calls.

What a selection of features needs (views, key columns, request fields, metadata names,
output columns and their types) is worked out once and kept in a `LookupPlan`; an
`OnlineLookup` caches the plans of the selections it has seen, so a repeated request pays
only for checking its input, one round trip and the kernels.

`OnlineLookup.answer` gives the columns as a dict, a DataFrame or an Arrow table, with
warnings and, on request, per view and entity whether state was found and its newest
event (`lookup_answer`); `lookup` is its dict of columns alone.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from featurestore.errors import FeatureStoreWarning, InputError
from featurestore.feature_columns import request_feature_type
from featurestore.fits.applying import FitCache
from featurestore.offline.training_output import NEVER_NULL_AGGREGATIONS, FeatureColumn
from featurestore.online import OnlineStore, ReadResult
from featurestore.online.published import (
    STATE_FORMAT,
    check_view,
    dictionary_name,
    end_name,
    state_name,
)
from featurestore.online.stored_states import has_newest_times, split_values
from featurestore.references import FeatureSelection, select_features
from featurestore.registry import Registry
from featurestore.serving.errors import NotMaterializedError, RequestError
from featurestore.serving.inputs import entity_columns, lookup_time, request_columns
from featurestore.serving.lookup_answer import (
    LookupAnswer,
    OnlineOutput,
    ViewStates,
    check_output,
    lookup_metadata,
    stale_warnings,
    typed_table,
)
from featurestore.serving.transformed_lookups import TransformedLookups
from featurestore.serving.values import python_lists, python_values
from featurestore.times import format_micros
from featurestore.view_states import compiled_state_keys
from transforms import CompiledGraph
from transforms.graph import RequestInputs
from transforms.spec import ColumnType

if TYPE_CHECKING:
    import pandas as pd

    from featurestore.context import StoreContext

_PLAN_CACHE_SIZE = 256


@dataclass(frozen=True)
class _ViewRead:
    """One feature view a lookup reads: its states are keyed by `key_columns`."""

    name: str
    key_columns: tuple[str, ...]


@dataclass(frozen=True)
class _Output:
    """One output column: row `row` of the values computed for `view`."""

    column: str
    view: str
    row: int
    kind: ColumnType
    dictionary_column: str | None
    never_null: bool = False  # count and sum: integers with no null mask
    items: tuple[int, ...] = ()  # a list feature's entry rows (its own row: its length)
    ranked: bool = False  # top_k: entries are (value, count) pairs

    @property
    def rows(self) -> list[int]:
        """Its row, then a list feature's entry rows."""
        return [self.row, *self.items]


@dataclass(frozen=True)
class LookupPlan:
    """Everything about a selection of features that does not depend on the entities.

    Attributes:
        key_types: entity key columns needed, in output order → INT or STRING.
        reads: the feature views whose states are read, in first-use order.
        request_views: the request views to evaluate → what their requested features
            read (only those inputs are required and computed; the others are null).
        field_types: request fields needed → their types.
        metadata_names: metadata read with the states (hash, ends, dictionaries).
        outputs: the feature columns, in request order.
        windows: feature view → the longest window of the features computed from it
            (views computing only lifetime features are absent).
        refs: the (view, feature) of each output, in order.
        view_names: the names of `reads`.
    """

    key_types: dict[str, ColumnType]
    reads: tuple[_ViewRead, ...]
    request_views: dict[str, RequestInputs]
    field_types: dict[str, ColumnType]
    metadata_names: tuple[str, ...]
    outputs: tuple[_Output, ...]
    windows: dict[str, int] = field(default_factory=dict)
    refs: tuple[tuple[str, str], ...] = ()
    view_names: tuple[str, ...] = ()


class OnlineLookup:
    """Answers lookups for one registry and its compiled kernels.

    Create it once (a server does so at startup) and call `lookup` for each request;
    it holds no connection, the online store is passed in.

    Args:
        registry: the validated definitions.
        kernels: the registry's compiled graph.
    """

    def __init__(self, registry: Registry, kernels: CompiledGraph) -> None:
        self.registry = registry
        self.kernels = kernels
        # The state key each view's published states must carry to fit these kernels.
        self.state_keys = compiled_state_keys(registry, kernels)
        self._plans: dict[tuple, LookupPlan] = {}
        # Names a client may send whatever it asks for: the same entities and request
        # fields for every selection. Those a selection does not read are ignored.
        self._entity_keys = frozenset(key for entity in registry.entities.values()
                                      for key in entity.keys)
        self._fields = frozenset(field for view in registry.request_views.values()
                                 for field in view.request)
        # Decoded dictionaries by view, with the raw blob they came from: a lookup
        # re-parses one only when the stored blob changed (a push added a value).
        self._dictionaries: dict[str, tuple[bytes, dict[str, list[str]]]] = {}
        self._transformed = TransformedLookups(registry, kernels)

    def plan(
        self, features: Sequence[str] | str | None, service: str | None, full_names: bool
    ) -> LookupPlan:
        """The plan of a selection (cached).

        Raises:
            RequestError: neither or both of features and service, an unknown view,
                feature or service, or two features sharing a bare name.
        """
        cache_key = (tuple(features) if type(features) is list else features, service,
                     full_names)
        try:
            plan = self._plans.get(cache_key)
        except TypeError:  # unhashable input (a dict in a list): selection reports it
            return self._build_plan(_select(self.registry, features, service, full_names))
        if plan is None:
            # Only valid selections reach the cache: _select raises for anything else.
            plan = self._build_plan(_select(self.registry, features, service, full_names))
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[cache_key] = plan
        return plan

    def lookup(
        self,
        online: OnlineStore,
        *,
        features: Sequence[str] | str | None = None,
        service: str | None = None,
        entities: Mapping[str, object] | None = None,
        request: Mapping[str, object] | None = None,
        at: object = None,
        full_names: bool = False,
    ) -> dict[str, list]:
        """Feature values for entities at a time; see `get_online_features`."""
        answer = self.answer(online, features=features, service=service, entities=entities,
                             request=request, at=at, full_names=full_names)
        return answer.features  # type: ignore[return-value]

    def answer(
        self,
        online: OnlineStore,
        *,
        features: Sequence[str] | str | None = None,
        service: str | None = None,
        entities: Mapping[str, object] | None = None,
        request: Mapping[str, object] | None = None,
        at: object = None,
        full_names: bool = False,
        output: OnlineOutput = "dict",
        include_metadata: bool = False,
        transformed: bool = False,
        fit: str | None = None,
        fits: FitCache | None = None,
    ) -> LookupAnswer:
        """Feature values in the shape `output` asks for, with warnings and (when
        `include_metadata`) the metadata of `lookup_answer`; with `transformed`, the
        service's transformed columns too, from the fit `fits` finds."""
        check_output(output)
        plan = self.plan(features, service, full_names)
        program = self._transformed.program(service, transformed, fit, fits)
        keys, rows = entity_columns(entities if entities is not None else {}, plan.key_types,
                                    self._entity_keys)
        fields, field_rows = request_columns(request, plan.field_types,
                                             rows if plan.reads else None, self._fields)
        at_us = lookup_time(at)
        values, reads, version = (self._view_values(online, plan, keys, at_us) if plan.reads
                                  else ({}, [], None))
        for name, inputs in plan.request_views.items():
            dependencies = {ref: values[ref[0]][self._row(*ref)] for ref in inputs.features}
            values[name] = self.kernels.request_views[name].evaluate_given(
                fields, dependencies, rows if field_rows is None else field_rows)
        stale = stale_warnings(reads, plan.windows, at_us, at is not None)
        metadata = lookup_metadata(reads, at_us, stale) if include_metadata else None
        typed = self._typed_columns(plan, values) if output != "dict" or program else []
        extra: list[FeatureColumn] = []
        if program is not None:
            # The same function as a transformed training set, on the same columns.
            extra = program.columns(dict(zip(plan.refs, typed, strict=True)))
            if metadata is not None:
                metadata["fit"] = program.artifact.id
        if output == "dict":
            result: dict[str, list] | pd.DataFrame | pa.Table = self._python_columns(
                plan, keys, values)
            for column in extra:
                result[column.name] = python_values(column.values.tolist(), column.kind,
                                                    column.dictionary)
        else:
            count = rows if field_rows is None else field_rows
            result = typed_table(keys, plan.key_types, [*typed, *extra], count, output)
        return LookupAnswer(result, stale, metadata,
                            None if program is None else program.artifact.id, at_us, version,
                            plan.view_names)

    def _python_columns(self, plan: LookupPlan, keys: dict[str, list],
                        values: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = dict(keys)
        rows_of = {name: matrix.tolist() for name, matrix in values.items()}
        for output in plan.outputs:
            rows = rows_of[output.view]
            if output.items:
                out[output.column] = python_lists([rows[r] for r in output.rows], output.kind,
                                                  self._dictionary(output), output.ranked)
            else:
                out[output.column] = python_values(rows[output.row], output.kind,
                                                   self._dictionary(output))
        return out

    def _typed_columns(self, plan: LookupPlan,
                       values: dict[str, np.ndarray]) -> list[FeatureColumn]:
        return [FeatureColumn(output.column, output.kind,
                              values[output.view][output.rows if output.items else output.row],
                              output.never_null, self._dictionary(output), output.ranked)
                for output in plan.outputs]

    def _dictionary(self, output: _Output) -> list[str] | None:
        if output.dictionary_column is None:
            return None
        return self._dictionaries[output.view][1].get(output.dictionary_column, [])

    def _view_values(
        self, online: OnlineStore, plan: LookupPlan, keys: dict[str, list], at_us: int
    ) -> tuple[dict[str, np.ndarray], list[ViewStates], str | None]:
        """Read every needed state in one round trip and merge each view at `at_us`;
        also the online version read."""
        per_view = [_key_tuples(keys, read.key_columns) for read in plan.reads]
        requests = [
            (read.name, key) for read, tuples in zip(plan.reads, per_view, strict=True)
            for key in tuples
        ]
        result = online.read(requests, plan.metadata_names)
        ends = self._check(result, plan, at_us)
        framed = has_newest_times(result.metadata)
        values: dict[str, np.ndarray] = {}
        reads: list[ViewStates] = []
        start = 0
        for read, tuples in zip(plan.reads, per_view, strict=True):
            stored = result.states[start : start + len(tuples)]
            start += len(tuples)
            blobs, newest = split_values(stored, framed)
            _check_newest(read.name, tuples, newest, at_us)
            values[read.name] = self.kernels.views[read.name].values_from_states(blobs, at_us)
            reads.append(ViewStates(read.name, ends[read.name],
                                    [blob is not None for blob in blobs], newest))
        return values, reads, result.version

    def _check(self, result: ReadResult, plan: LookupPlan, at_us: int) -> dict[str, int]:
        """Refuse states that are missing, of other definitions, or newer than `at_us`;
        return each view's materialization end."""
        if result.version is None:
            raise NotMaterializedError(
                "nothing is materialized in the online store yet: run `featurestore materialize`"
            )
        metadata = result.metadata
        ends: dict[str, int] = {}
        for read in plan.reads:
            end = ends[read.name] = check_view(metadata, read.name, self.state_keys[read.name])
            if at_us < end:
                raise RequestError(
                    "time_before_materialization",
                    f"'at' is before the online state of '{read.name}', materialized up to "
                    f"{format_micros(end)}; online lookups answer from then on (use a "
                    "training set for earlier times)",
                )
            name = dictionary_name(read.name)
            if name in metadata:
                self._decode_dictionaries(read.name, metadata[name])
        return ends

    def _decode_dictionaries(self, view: str, blob: bytes | None) -> None:
        cached = self._dictionaries.get(view)
        if cached is not None and cached[0] == blob:
            return
        self._dictionaries[view] = (blob or b"", orjson.loads(blob) if blob else {})

    def _row(self, view: str, feature: str) -> int:
        return self.kernels.views[view].feature_names.index(feature)

    def _build_plan(self, selection: FeatureSelection) -> LookupPlan:
        registry, kernels = self.registry, self.kernels
        # A request view is evaluated whole, but only what the requested features read
        # is asked for and read; the other inputs are null and their features dropped.
        request_views = {
            name: kernels.request_views[name].inputs_of(
                feature for view, feature in selection.refs if view == name)
            for name in selection.request_views(registry)
        }
        view_names = selection.feature_views(registry)
        for name, inputs in request_views.items():
            for view, feature in kernels.request_views[name].dependencies:
                if (view, feature) in inputs.features and view not in view_names:
                    view_names.append(view)
        key_types: dict[str, ColumnType] = {}
        reads = []
        for name in view_names:
            view = registry.feature_views[name]
            schema = kernels.graph.spec.schema(view.source)
            columns = registry.entities[view.entity].keys
            key_types.update((column, schema[column]) for column in columns)
            reads.append(_ViewRead(name, columns))
        outputs = tuple(
            self._output(column, view, feature)
            for (view, feature), column in zip(selection.refs, selection.columns, strict=True)
        )
        strings = {output.view for output in outputs if output.dictionary_column is not None}
        metadata = [name for view in view_names for name in (state_name(view), end_name(view))]
        metadata += [dictionary_name(name) for name in view_names if name in strings]
        metadata.append(STATE_FORMAT)
        field_types: dict[str, ColumnType] = {}
        for name, inputs in request_views.items():
            field_types.update((field, kind) for field, kind
                               in kernels.request_views[name].request_fields
                               if field in inputs.fields)
        return LookupPlan(key_types, tuple(reads), request_views, field_types,
                          tuple(metadata), outputs, self._windows(selection, request_views),
                          selection.refs, tuple(view_names))

    def _windows(self, selection: FeatureSelection,
                 request_views: Mapping[str, RequestInputs]) -> dict[str, int]:
        """View → the longest window of the features a selection computes from it."""
        refs = [ref for ref in selection.refs if ref[0] in self.registry.feature_views]
        refs += [ref for inputs in request_views.values() for ref in sorted(inputs.features)]
        windows: dict[str, int] = {}
        for view, feature in refs:
            window = self.registry.feature_views[view].features[feature].window
            if window is not None:
                windows[view] = max(window, windows.get(view, 0))
        return windows

    def _output(self, column: str, view: str, feature: str) -> _Output:
        if view in self.kernels.views:
            compiled = self.kernels.views[view]
            aggregation = self.registry.feature_views[view].features[feature].agg
            rows = compiled.rows_of([feature])
            plan = compiled.list_features.get(feature)
            return _Output(column, view, rows[0], compiled.feature_types[feature],
                           compiled.string_feature_columns.get(feature),
                           aggregation in NEVER_NULL_AGGREGATIONS, tuple(rows[1:]),
                           plan is not None and plan.ranked)
        # Request features are floats (booleans when boolean), as in training sets.
        compiled_request = self.kernels.request_views[view]
        row = compiled_request.feature_names.index(feature)
        kind = request_feature_type(compiled_request.feature_types.get(feature))
        return _Output(column, view, row, kind, None)


def get_online_features(
    store: StoreContext,
    features: Sequence[str] | str | None = None,
    service: str | None = None,
    entities: Mapping[str, object] | None = None,
    request: Mapping[str, object] | None = None,
    at: object = None,
    full_names: bool = False,
    output: OnlineOutput = "dict",
    include_metadata: bool = False,
    transformed: bool = False,
    fit: str | None = None,
) -> dict[str, list] | pd.DataFrame | pa.Table | dict[str, Any]:
    """Feature values for entities at a time, from the online store (DESIGN §8).

    Args:
        store: the feature store.
        features: `view:feature` references (or service names), in output order.
        service: a service name instead of `features`.
        entities: entity key column → list of key values (at most `MAX_ENTITIES`).
        request: request field → list of values, one per entity, for request features.
        at: the lookup time: None (now), an ISO-8601 string (no offset means UTC) or
            a datetime (naive = UTC); not before the materialization end.
        full_names: name feature columns `view__feature` instead of the bare name.
        output: "dict" (column → list), "pandas" (a DataFrame) or "arrow" (a Table),
            typed as training sets are.
        include_metadata: return `{"features": <output>, "metadata": {...}}` with
            the metadata of `lookup_answer` (per view and entity "found"/"not_found" and
            the newest event, the materialization ends, warnings; and "fit", the fitted
            artifact's id, when transformed).
        transformed: with `service`, append its transformed columns (see
            `FeatureStore.get_training_set`).
        fit: which fit: None (the pinned one), "latest", or an id.

    Returns:
        The entity key columns, then one column per feature in request order; nulls are
        None, counts are ints, booleans bools, `first`/`last` of strings are strings.
        Entities the store has never seen get the values of an empty window (count and
        sum 0). A lookup at now (no `at`) of views whose data ended more than the
        longest requested window before now also warns (FeatureStoreWarning).

    Raises:
        RequestError: bad features, entity keys, request fields or time (the code says
            which).
        NotMaterializedError: nothing is materialized yet.
        RegistryMismatchError: the online store was loaded by other definitions.
        OnlineStoreUnavailable: the online store cannot be reached.
    """
    answer = lookup_engine(store).answer(
        store.online_store(), features=features, service=service, entities=entities,
        request=request, at=at, full_names=full_names, output=output,
        include_metadata=include_metadata, transformed=transformed, fit=fit,
        fits=store.fits(),
    )
    for text in answer.warnings:
        warnings.warn(text, FeatureStoreWarning, stacklevel=3)
    if include_metadata:
        return {"features": answer.features, "metadata": answer.metadata}
    return answer.features


_ENGINES: weakref.WeakKeyDictionary[StoreContext, OnlineLookup] = weakref.WeakKeyDictionary()


def _check_newest(view: str, keys: list[tuple], newest: list[int | None],
                  at_us: int) -> None:
    """Refuse a lookup time at or before an entity's newest folded event.

    A pushed event is folded into the entity's online state at once, whatever its time;
    a lookup at an earlier `at` would count it, where the training set at that time does
    not (events before `at` only). Such a value is not point-in-time exact, so it is
    refused, as a time before the materialization end is.
    """
    for key, newest_us in zip(keys, newest, strict=True):
        if newest_us is not None and newest_us >= at_us:
            entity = key[0] if len(key) == 1 else key
            raise RequestError(
                "time_before_newest_event",
                f"'at' ({format_micros(at_us)}) is not after the newest event of entity "
                f"{entity!r} in '{view}' ({format_micros(newest_us)}, pushed after the "
                "materialization): its online state already holds that event, so online "
                "lookups for it answer from then on (use a training set for earlier times)",
            )


def lookup_engine(store: StoreContext) -> OnlineLookup:
    """The `OnlineLookup` of a store, built on first use and kept while the store lives."""
    engine = _ENGINES.get(store)
    if engine is None:
        engine = _ENGINES[store] = OnlineLookup(store.registry, store.kernels())
    return engine


def _key_tuples(keys: dict[str, list], columns: tuple[str, ...]) -> list[tuple]:
    if len(columns) == 1:
        return [(value,) for value in keys[columns[0]]]
    return list(zip(*(keys[column] for column in columns), strict=True))


def _select(
    registry: Registry, features: object, service: object, full_names: bool
) -> FeatureSelection:
    """`select_features` with shape checks first and a code on every error."""
    if features is not None and not (
        isinstance(features, str)
        or (isinstance(features, list | tuple) and all(isinstance(f, str) for f in features))
    ):
        raise RequestError("invalid_features",
                           "'features' must be a list of 'view:feature' strings")
    if service is not None and not isinstance(service, str):
        raise RequestError("invalid_features", "'service' must be a service name")
    try:
        return select_features(registry, features, service, bool(full_names))
    except InputError as error:
        members = [service] if service is not None else (
            [features] if isinstance(features, str) else list(features or []))
        unknown = any(not _known(registry, member) for member in members)
        raise RequestError("unknown_feature" if unknown else "invalid_features",
                           str(error)) from None


def _known(registry: Registry, member: str) -> bool:
    if ":" not in member:
        return member in registry.services
    view, feature = member.split(":", 1)
    views = {**registry.feature_views, **registry.request_views}
    return view in views and feature in views[view].features
