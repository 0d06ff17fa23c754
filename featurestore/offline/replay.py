"""Replay of the served-value log: every logged value recomputed by the offline engine.

A server logging lookups (`serving/served_log.py`) records, per entity row, the values
it served, the lookup time `at` and the online state version of each view that answered.
Replay recomputes each value with the training kernels of the registry version that
built that state, over the raw events the state held (`state_events.py`: the events
before its materialization end as that run read them, the pushed events it folded in at
publication, and those pushed after it up to the moment the lookup was logged), and
compares them exactly: floats bit for bit, null equal to null. Zero mismatches is the
expected result (DESIGN §4.5).

States that a later materialization replaced are replayed from the record each
publication leaves (`publications.py`). Request-view features are recomputed from the
request fields logged with the row and the recomputed values of the view features they
read, by the request view's kernel (`replay_requests.py`). What cannot be recomputed
is counted, with the reason, and never as a match:

- request-view features, and transformed columns reading them, of rows logged without
  their request fields (logged before the log held them);
- values of a state published before publications were recorded and since replaced;
- views whose source files were rewritten or removed since (their events are gone).
"""

from __future__ import annotations

import bisect
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from featurestore.errors import FeatureStoreError, InputError
from featurestore.fits.service_transforms import service_transforms
from featurestore.offline.replay_report import ReplayMismatch, ReplayReport
from featurestore.offline.replay_requests import (
    REQUEST_FIELDS,
    RequestValue,
    logged_inputs,
    recompute_request_value,
)
from featurestore.offline.replay_states import REPLACED, ReplayState, ReplayStates
from featurestore.offline.state_events import StateEvents, state_values
from featurestore.offline.training_output import NEVER_NULL_AGGREGATIONS, FeatureColumn
from featurestore.online.published import REGISTRY, end_name, published_registry, state_name
from featurestore.references import FeatureSelection, select_features
from featurestore.registry.state import registry_hash
from featurestore.serving.errors import RequestError
from featurestore.serving.values import python_lists, python_values
from transforms import CompiledRequestView, CompiledView
from transforms.graph import RequestInputs
from transforms.spec import ColumnType

if TYPE_CHECKING:
    from featurestore.context import StoreContext

__all__ = ["REPLACED", "REQUEST_FIELDS", "replay"]

UNKNOWN_SELECTION = "the features asked for are not in the registry version that answered"
NOTHING_PUBLISHED = "nothing is published in the online store"
_State = tuple[str, str]  # (view, online version)


@dataclass
class _Query:
    """One value to recompute: `column` of logged row `row`, from `feature` of a state."""

    row: int
    column: str
    state: _State
    feature: str
    index: int = -1  # its place among the state's queries


@dataclass
class _RequestQuery:
    """One request-view value to recompute: `column` of logged row `row`, from the
    row's request fields and the view features of `dependencies` (hidden queries)."""

    row: int
    column: str
    compiled: CompiledRequestView
    feature: str
    inputs: RequestInputs
    dependencies: dict[tuple[str, str], _Query]


@dataclass
class _StateQueries:
    """Every query of one state: entity, time and how many later pushes it had seen."""

    entities: list[tuple] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    later: list[int] = field(default_factory=list)


def replay(store: StoreContext, log: pa.Table) -> ReplayReport:
    """Recompute every logged value with the offline engine and compare (module docstring).

    Args:
        store: the feature store's context.
        log: the served-value log's rows (`served_log.read_served_log`).

    Raises:
        OnlineStoreUnavailable: the online store cannot be reached.
    """
    report = ReplayReport(rows=log.num_rows)
    if not log.num_rows:
        return report
    rows = _parsed(log)
    published = _published(store)
    if published is None:
        report.skip(NOTHING_PUBLISHED, sum(len(row["values"]) for row in rows))
        return report
    context, registry_version, version, metadata = published
    context.kernels()  # compiled (or loaded) now: not while the offline file is open
    states = ReplayStates(store, context, registry_version, version, metadata,
                          {name for row in rows for name in row["state"].values()})
    queries: list[_Query] = []
    requests: list[_RequestQuery] = []
    # Row → request-view feature → why it cannot be recomputed (for its transforms).
    unreplayable: dict[int, dict[tuple[str, str], str]] = {}
    per_state: dict[_State, _StateQueries] = {}
    transformed: list[tuple[int, StoreContext, FeatureSelection, list[str]]] = []
    for number, row in enumerate(rows):
        answered = states.context(row["registry_version"]) or context
        selection = _selection(answered, row)
        if selection is None:
            report.skip(UNKNOWN_SELECTION, len(row["values"]))
            continue
        for (view, feature), column in zip(selection.refs, selection.columns, strict=True):
            if view in answered.registry.request_views:
                request = _request_query(answered, states, per_state, number, row, column,
                                         view, feature)
                if isinstance(request, str):
                    report.skip(request)
                    unreplayable.setdefault(number, {})[view, feature] = request
                else:
                    requests.append(request)
                continue
            found = _state_of(answered, states, row, view)
            if isinstance(found, str):
                report.skip(found)
                continue
            key = (view, row["state"][view])
            query = _Query(number, column, key, feature)
            _schedule(per_state.setdefault(key, _StateQueries()), query, row, found)
            queries.append(query)
        extra = [name for name in row["values"] if name not in set(selection.columns)]
        if extra:
            transformed.append((number, answered, selection, extra))
    expected = _recompute(store, states, per_state)
    for query in queries:
        _compare(report, rows[query.row], query.column,
                 expected.value(query.state, query.feature, query.index), query.state[1])
    computed = _compare_requests(report, rows, requests, unreplayable, expected)
    by_row: dict[int, list[_Query]] = {}
    for query in queries:
        by_row.setdefault(query.row, []).append(query)
    for number, answered, selection, extra in transformed:
        _compare_transformed(report, answered, states, rows[number], selection, extra,
                             by_row.get(number, []), expected, computed.get(number, {}),
                             unreplayable.get(number, {}))
    return report


def _parsed(log: pa.Table) -> list[dict]:
    columns = {name: log.column(name).to_pylist() for name in log.column_names}
    loads = orjson.loads
    # Rows logged before the log held request fields have none (null, or no column).
    fields = columns.get("request_fields") or [None] * log.num_rows
    return [{"logged_at_us": logged, "at_us": at, "state": loads(state),
             "request": loads(request), "entity": loads(entity), "values": loads(values),
             "fields": None if given is None else loads(given),
             "registry_version": None if registry is None else int(registry)}
            for logged, at, registry, state, request, entity, values, given in zip(
                columns["logged_at_us"], columns["at_us"], columns["registry_version"],
                columns["state_version"], columns["request"], columns["entity"],
                columns["values"], fields, strict=True)]


def _published(store: StoreContext
               ) -> tuple[StoreContext, int | None, str, Mapping[str, bytes | None]] | None:
    """The published version's context (its registry's kernels), registry version
    number, name and state metadata; None when nothing is published."""
    online = store.online_store()
    for _ in range(3):  # a publication between the two reads: read both again
        head = online.read([], [REGISTRY])
        if head.version is None:
            return None
        registry = published_registry(head.metadata)
        context, number = store, None
        if registry is not None:
            number = registry.version
            if registry.registry_hash != registry_hash(store.registry_text):
                context = store.for_definitions(registry.registry(), registry.text,
                                                registry.column_types())
        names = [name for view in context.registry.feature_views
                 for name in (state_name(view), end_name(view))]
        read = online.read([], names)
        if read.version == head.version:
            return context, number, head.version, read.metadata
    raise FeatureStoreError("the online store kept publishing new versions: replay again")


def _selection(context: StoreContext, row: dict) -> FeatureSelection | None:
    """The logged request's features, named as its values are (bare or full names)."""
    request = row["request"]
    features, service = request.get("features"), request.get("service")
    for full_names in (False, True):
        try:
            selection = select_features(context.registry, features, service, full_names)
        except InputError:
            return None
        if set(selection.columns) <= set(row["values"]):
            return selection
    return None


def _state_of(context: StoreContext, states: ReplayStates, row: dict,
              view: str) -> ReplayState | str:
    """The state a row's value of `view` came from, or why it cannot be replayed."""
    if view in context.registry.request_views:
        return REQUEST_FIELDS
    version = row["state"].get(view)
    if not isinstance(version, str):
        return f"no state version of '{view}' was logged"
    return states.state(view, version)


def _request_query(context: StoreContext, states: ReplayStates,
                   per_state: dict[_State, _StateQueries], number: int, row: dict,
                   column: str, view: str, feature: str) -> _RequestQuery | str:
    """A request-view value to recompute, its view-feature inputs scheduled as hidden
    queries; or why it cannot be recomputed."""
    compiled = context.kernels().request_views[view]
    inputs = logged_inputs(compiled, feature, row["fields"])
    if isinstance(inputs, str):
        return inputs
    dependencies = {}
    for dependency_view, dependency in sorted(inputs.features):
        found = _state_of(context, states, row, dependency_view)
        if isinstance(found, str):
            return found
        key = (dependency_view, row["state"][dependency_view])
        query = _Query(number, "", key, dependency)
        _schedule(per_state.setdefault(key, _StateQueries()), query, row, found)
        dependencies[dependency_view, dependency] = query
    return _RequestQuery(number, column, compiled, feature, inputs, dependencies)


def _schedule(queries: _StateQueries, query: _Query, row: dict, state: ReplayState) -> None:
    registry = state.context.registry
    keys = registry.entities[registry.feature_views[query.state[0]].entity].keys
    query.index = len(queries.entities)
    queries.entities.append(tuple(row["entity"].get(key) for key in keys))
    queries.times.append(row["at_us"])
    # Pushes written before the lookup was logged had reached the state it read.
    queries.later.append(bisect.bisect_left(state.later_times, row["logged_at_us"]))


@dataclass
class _Expected:
    """The recomputed values: state → float64 [output rows, queries]."""

    states: ReplayStates
    values: dict[_State, np.ndarray]

    def value(self, state: _State, feature: str, index: int) -> object:
        kind, dictionary = self._decoding(state, feature)
        plan = self._compiled(state).list_features.get(feature)
        if plan is not None:
            block = self._block(state, feature, index).tolist()
            return python_lists(block, kind, dictionary, plan.ranked)[0]
        return python_values([self.raw(state, feature, index)], kind, dictionary)[0]

    def raw(self, state: _State, feature: str, index: int) -> float:
        compiled = self._compiled(state)
        return float(self.values[state][compiled.feature_names.index(feature), index])

    def column(self, state: _State, feature: str, index: int, name: str) -> FeatureColumn:
        definition = self._state(state).context.registry.feature_views[state[0]]
        kind, dictionary = self._decoding(state, feature)
        plan = self._compiled(state).list_features.get(feature)
        values = (np.array([self.raw(state, feature, index)]) if plan is None
                  else self._block(state, feature, index))
        return FeatureColumn(name, kind, values,
                             definition.features[feature].agg in NEVER_NULL_AGGREGATIONS,
                             dictionary, plan is not None and plan.ranked)

    def _compiled(self, state: _State) -> CompiledView:
        return self._state(state).context.kernels().views[state[0]]

    def _block(self, state: _State, feature: str, index: int) -> np.ndarray:
        """A list feature's rows for one query: [1 + entries, 1]."""
        rows = self._compiled(state).rows_of([feature])
        return self.values[state][rows, index:index + 1]

    def _state(self, state: _State) -> ReplayState:
        found = self.states.state(*state)
        assert isinstance(found, ReplayState)  # only replayable states were queried
        return found

    def _decoding(self, state: _State, feature: str) -> tuple:
        found = self._state(state)
        compiled = found.context.kernels().views[state[0]]
        column = compiled.string_feature_columns.get(feature)
        dictionary = found.dictionaries.get(column) if column else None
        return compiled.feature_types[feature], dictionary


def _recompute(store: StoreContext, states: ReplayStates,
               per_state: Mapping[_State, _StateQueries]) -> _Expected:
    expected = _Expected(states, {})

    def work(con: duckdb.DuckDBPyConnection) -> None:
        for key, queries in per_state.items():
            state = states.state(*key)
            assert isinstance(state, ReplayState)
            view, events = key[0], state.events
            out = np.full((state.context.kernels().views[view].output_rows,
                           len(queries.entities)), np.nan)
            later = np.array(queries.later)
            for count in sorted(set(queries.later)):
                # One read per set of later pushes the lookups saw.
                rows = np.flatnonzero(later == count)
                seen = StateEvents(view, events.end_us, events.manifest,
                                   events.later_segments[:count])
                out[:, rows] = state_values(
                    con, state.context, seen, [queries.entities[i] for i in rows],
                    [queries.times[i] for i in rows], state.dictionaries)
            expected.values[key] = out

    if per_state:
        store.offline_database().run(work, read_only=True)
    return expected


def _compare_requests(report: ReplayReport, rows: list[dict], requests: list[_RequestQuery],
                      unreplayable: dict[int, dict[tuple[str, str], str]],
                      expected: _Expected
                      ) -> dict[int, dict[tuple[str, str], tuple[RequestValue, str | None]]]:
    """Recompute and compare the request-view values; row → feature → the value and the
    state version it read (for the transformed columns reading it)."""
    computed: dict[int, dict[tuple[str, str], tuple[RequestValue, str | None]]] = {}
    for request in requests:
        row = rows[request.row]
        ref = (request.compiled.name, request.feature)
        dependencies = {dependency: expected.raw(query.state, query.feature, query.index)
                        for dependency, query in request.dependencies.items()}
        try:
            value = recompute_request_value(request.compiled, request.feature,
                                            request.inputs, row["fields"], dependencies)
        except RequestError as error:  # a log written by hand, or damaged
            reason = f"logged request fields the lookup could not have taken: {error}"
            report.skip(reason)
            unreplayable.setdefault(request.row, {})[ref] = reason
            continue
        # A mismatch names the state its view-feature inputs came from (if any).
        version = next((query.state[1] for query in request.dependencies.values()), None)
        _compare(report, row, request.column, python_values([value.raw], value.kind)[0],
                 version)
        computed.setdefault(request.row, {})[ref] = (value, version)
    return computed


def _compare(report: ReplayReport, row: dict, column: str, expected: object,
             version: str | None) -> None:
    report.checked += 1
    served = row["values"].get(column)
    # The log holds JSON: compare with the expected value as the log would hold it.
    expected = orjson.loads(orjson.dumps(expected))
    if not _identical(served, expected):
        report.add_mismatch(ReplayMismatch(row["entity"], row["at_us"], column, served,
                                           expected, version))


def _identical(served: object, expected: object) -> bool:
    """Exact equality: same type, floats bit for bit (NaN and None are logged as null)."""
    if type(served) is not type(expected):
        return False
    if isinstance(served, float) and isinstance(expected, float):
        return struct.pack("<d", served) == struct.pack("<d", expected) or (
            math.isnan(served) and math.isnan(expected))
    return served == expected


def _compare_transformed(report: ReplayReport, context: StoreContext, states: ReplayStates,
                         row: dict, selection: FeatureSelection, extra: list[str],
                         queries: list[_Query], expected: _Expected,
                         requested: Mapping[tuple[str, str], tuple[RequestValue, str | None]],
                         unreplayable: Mapping[tuple[str, str], str]) -> None:
    """Recompute a transformed lookup's extra columns from its recomputed features: each
    transform's columns are replayable when the feature it reads is.

    Args:
        context: the registry version that answered.
        queries: the row's own queries (one per replayable feature-view column).
        requested: the row's recomputed request-view values, with their state versions.
        unreplayable: the row's request-view features that were not recomputed → why.
    """
    request = row["request"]
    service = request.get("service")
    if not request.get("transformed") or not isinstance(service, str):
        report.skip(UNKNOWN_SELECTION, len(extra))
        return
    try:
        transforms = service_transforms(context.registry, context.kernels(), service)
        program = context.fits().program(transforms, request.get("fit"))
    except InputError as error:
        report.skip(f"the fit that answered cannot be read: {error}", len(extra))
        return
    own = {(query.state[0], query.feature): query for query in queries}
    names = dict(zip(selection.refs, selection.columns, strict=True))
    # A feature that cannot be recomputed enters as null: its transforms are skipped.
    columns = {ref: expected.column(own[ref].state, ref[1], own[ref].index, names[ref])
               if ref in own else requested[ref][0].column(names.get(ref, ref[1]))
               if ref in requested else
               FeatureColumn(names.get(ref, ref[1]), ColumnType.FLOAT, np.full(1, np.nan))
               for ref in transforms.refs}
    read_by = {name: ref for fitted, ref in zip(program.program.transforms, transforms.refs,
                                                strict=True)
               for name in fitted.output_names()}
    for column in program.columns(columns):
        if column.name not in extra:
            continue
        ref = read_by[column.name]
        if ref in requested:
            version = requested[ref][1]
        elif ref in own:
            version = own[ref].state[1]
        else:
            reason = unreplayable.get(ref) or _state_of(context, states, row, ref[0])
            text = reason if isinstance(reason, str) else REPLACED
            report.skip(f"transformed column reading a {text}" if text == REQUEST_FIELDS
                        else text)
            continue
        value = python_values(column.values.tolist(), column.kind, column.dictionary)[0]
        _compare(report, row, column.name, value, version)
