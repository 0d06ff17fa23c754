"""Compile a graph into kernels: the shared engine plus one small module per view.

The aggregation kernels are ordinary Numba code in `transforms/engine.py`, compiled once
per machine and kept in Numba's disk cache; each view steers them with its layout
(`transforms/layout.py`). Each feature view and request view also gets a generated module
for its expressions (`transforms/kernel_modules.py`), cached on its own, so editing one
view compiles one small function at most.

Nothing compiles, and Numba is not even imported, until a kernel is first called: a
process that only builds training sets never compiles the online kernels, and `apply` of
an unchanged registry loads nothing. `CompiledGraph.warm` compiles whatever is not cached
yet, reporting each unit as it goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from transforms.fingerprints import view_fingerprint
from transforms.graph import Graph, RequestInputs, RequestPlan, ViewPlan, build_graph
from transforms.kernel_modules import (
    Unit,
    engine_mark,
    graph_hash,
    graph_units,
    load_module,
    ready_mark,
)
from transforms.parallel import run_parallel, split_queries, split_rows
from transforms.spec import ColumnType, GraphSpec
from transforms.string_terms import evaluate_string_term

if TYPE_CHECKING:
    from transforms.layout import ViewLayout

Progress = Callable[[str], None]
"""Receives one line per unit being compiled, e.g. `compiling user_txn (3/20)`."""


@dataclass(frozen=True)
class EntityStates:
    """Per-entity state blobs: `blobs[i]` belongs to entity id `entities[i]`."""

    entities: np.ndarray
    blobs: list[bytes]


def _pack(blobs: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate blobs into one float64 array and offsets (None = no state)."""
    sizes = np.fromiter((0 if b is None else len(b) // 8 for b in blobs), np.int64, len(blobs))
    offsets = np.zeros(len(blobs) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    joined = b"".join(b for b in blobs if b is not None)
    return np.frombuffer(joined, np.float64).copy(), offsets


def _stack(names: Sequence[str], columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Columns as one C-contiguous float64 matrix, one row per column."""
    matrix = np.empty((len(names), n))
    for i, name in enumerate(names):
        values = np.asarray(columns[name], dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"column {name!r} has shape {values.shape}, expected ({n},)")
        matrix[i] = values
    return matrix


def _empty(kind: ColumnType) -> np.ndarray:
    """No values of a request field: strings as objects, anything else as float64."""
    return np.empty(0, dtype=object) if kind == ColumnType.STRING else np.zeros(0)


def _int64(values: np.ndarray | Sequence[int]) -> np.ndarray:
    # The kernels' signatures take writable arrays; Arrow hands out read-only views.
    return np.require(values, dtype=np.int64, requirements=["C", "W"])


class CompiledView:
    """The kernels of one feature view: its row expressions and the shared engine."""

    def __init__(self, plan: ViewPlan, unit: Unit, cache_dir: Path) -> None:
        self.plan = plan
        self.name = plan.spec.name
        # What the states this view builds depend on: equal fingerprints, same states.
        self.fingerprint = view_fingerprint(plan)
        self.unit = unit
        self._cache_dir = cache_dir
        self.input_columns = tuple(plan.input_columns)
        self.string_columns = tuple(plan.string_columns)
        self.feature_names = tuple(f.name for f in plan.features)
        self.feature_types = {f.name: f.result_type for f in plan.features}
        # Rows of the kernels' output: a row per feature (a list's length), then the
        # entries of list features from each one's `item_row`.
        self.output_rows = plan.output_rows
        self.list_features = {f.name: f for f in plan.features if f.is_list}
        self.string_feature_columns = self._string_feature_columns()
        self._layouts: dict[frozenset[str], ViewLayout] = {}
        windows = [g.max_window_us + g.hop_us for g in plan.groups]
        self.horizon_us = max(windows, default=0)

    def rows_of(self, names: Sequence[str]) -> list[int]:
        """Output rows of features `names`, in order: each one's own row, then a list
        feature's entries."""
        rows: list[int] = []
        for name in names:
            rows.append(self.feature_names.index(name))
            plan = self.list_features.get(name)
            if plan is not None:
                rows.extend(range(plan.item_row, plan.item_row + plan.items))
        return rows

    def split_features(self, values: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Rows `rows_of(names)` of an output, by feature: a scalar feature's row, or a list
        feature's block (its length row, then its entries)."""
        result: dict[str, np.ndarray] = {}
        row = 0
        for name in names:
            plan = self.list_features.get(name)
            if plan is None:
                result[name] = values[row]
                row += 1
            else:
                result[name] = values[row:row + 1 + plan.items]
                row += 1 + plan.items
        return result

    @cached_property
    def layout(self) -> ViewLayout:
        """The tables that steer the shared kernels for this view (loads the engine)."""
        from transforms.layout import view_layout

        return view_layout(self.plan)

    def layout_of(self, features: Iterable[str] | None) -> ViewLayout:
        """The layout computing `features` only (None: every feature of the view).

        Raises:
            ValueError: a name is not a feature of this view.
        """
        if features is None:
            return self.layout
        wanted = frozenset(features)
        unknown = sorted(wanted - set(self.feature_names))
        if unknown:
            raise ValueError(f"view {self.name!r} has no feature {', '.join(map(repr, unknown))}"
                             f"; its features: {', '.join(self.feature_names)}")
        if wanted == set(self.feature_names):
            return self.layout
        layout = self._layouts.get(wanted)
        if layout is None:
            from transforms.layout import view_layout

            layout = self._layouts[wanted] = view_layout(self.plan, wanted)
        return layout

    def features_of(self, rows: Iterable[int]) -> list[str]:
        """The features whose own output row is among `rows` (as `rows_of` gives them)."""
        count = len(self.feature_names)
        return [self.feature_names[r] for r in sorted(set(rows)) if r < count]

    @cached_property
    def _rows(self) -> Callable[..., None]:
        return load_module(self._cache_dir, self.unit).rows

    def _string_feature_columns(self) -> dict[str, str]:
        result = {}
        for feature in self.plan.features:
            if feature.result_type == ColumnType.STRING:
                expr = self.plan.expressions[feature.expr_index]
                result[feature.name] = expr.name  # first/last of a string is a bare column
        return result

    def literal_codes(self, dictionaries: Mapping[str, Sequence[str]]) -> np.ndarray:
        """Dictionary codes of the string literals the expressions compare with (-1: absent)."""
        codes = np.full(max(len(self.plan.literals), 1), -1.0)
        for k, (column, literal) in enumerate(self.plan.literals):
            values = list(dictionaries.get(column, ()))
            if literal in values:
                codes[k] = values.index(literal)
        return codes

    def rows(self, columns: Mapping[str, np.ndarray], dictionaries: Mapping[str, Sequence[str]],
             n: int) -> np.ndarray:
        """Evaluate the row expressions: a rows × expressions float64 matrix."""
        matrix = _stack(self.input_columns, columns, n)
        lits = self.literal_codes(dictionaries)
        values = np.empty((n, max(len(self.plan.expressions), 1)))
        run_parallel([(self._rows, (matrix, lits, values, r0, r1))
                      for r0, r1 in split_rows(n)])
        return values

    def training_values(self, entity: np.ndarray, ts: np.ndarray,
                        columns: Mapping[str, np.ndarray],
                        dictionaries: Mapping[str, Sequence[str]],
                        query_entity: np.ndarray, query_ts: np.ndarray,
                        features: Iterable[str] | None = None) -> np.ndarray:
        """Feature values at query times from raw events (offline path).

        Events and queries must be sorted by (entity, time). Returns float64
        [output_rows, n_queries] with NaN for null (row i is feature i; a list feature's
        row is its length, its entries follow from its `item_row`). With `features`, only
        those are computed (the same bits as computing all) and the other rows hold NaN.
        Large inputs run on every core, split at entity boundaries (each entity's values
        come from one thread, so the split changes no value).
        """
        layout = self.layout_of(features)
        entity, ts = _int64(entity), _int64(ts)
        query_entity, query_ts = _int64(query_entity), _int64(query_ts)
        values = self.rows(columns, dictionaries, len(entity))
        if layout is self.layout:
            out = np.empty((self.output_rows, len(query_entity)))
        else:
            out = np.full((self.output_rows, len(query_entity)), np.nan)
        tables, blocks = layout.tables, layout.max_blocks
        engine = _engine()
        run_parallel([(engine.training, (entity, ts, values, query_entity, query_ts, q0, q1,
                                         i0, i1, *tables, blocks, out))
                      for q0, q1, i0, i1 in split_queries(entity, query_entity)])
        return out

    def build_states(self, entity: np.ndarray, ts: np.ndarray,
                     columns: Mapping[str, np.ndarray],
                     dictionaries: Mapping[str, Sequence[str]], end_us: int) -> EntityStates:
        """State blobs as of `end_us` for every entity that has events (sorted input)."""
        distinct = int(np.count_nonzero(np.diff(_int64(entity)))) + 1 if len(entity) else 0
        return self.update_states([None] * distinct, entity, ts, columns, dictionaries, end_us)

    def update_states(self, old_blobs: Sequence[bytes | None], entity: np.ndarray,
                      ts: np.ndarray, columns: Mapping[str, np.ndarray],
                      dictionaries: Mapping[str, Sequence[str]], end_us: int) -> EntityStates:
        """Fold newer events into existing blobs; old_blobs[i] is the i-th distinct entity's."""
        entity, ts = _int64(entity), _int64(ts)
        values = self.rows(columns, dictionaries, len(entity))
        old_data, old_offsets = _pack(old_blobs)
        data, offsets, entities = _engine().states(entity, ts, values, old_data, old_offsets,
                                                int(end_us), self.layout.features,
                                                self.layout.groups)
        raw = data.tobytes()
        blobs = [raw[offsets[i] * 8:offsets[i + 1] * 8] for i in range(len(entities))]
        return EntityStates(entities=entities, blobs=blobs)

    def values_from_states(self, blobs: Sequence[bytes | None],
                           at_us: int | np.ndarray) -> np.ndarray:
        """Feature values at `at_us` (one time, or one per blob) from state blobs (online),
        laid out as `training_values` lays them out."""
        data, offsets = _pack(blobs)
        # A copy: contiguous and writable, as the kernel's arguments must be.
        at = np.broadcast_to(np.asarray(at_us, dtype=np.int64), (len(blobs),)).copy()
        out = np.empty((self.output_rows, len(blobs)))
        _engine().values(data, offsets, at, *self.layout.tables, self.layout.max_blocks, out)
        return out

    def warm(self) -> None:
        """Compile (or load from the disk cache) this view's own kernel, its row
        expressions, now; the shared kernels are warmed once for all views
        (`CompiledGraph.warm`)."""
        self._rows(np.zeros((len(self.input_columns), 0)), np.full(1, -1.0), np.empty((0, 1)),
                   0, 0)


class CompiledRequestView:
    """The loaded kernel of one request view."""

    def __init__(self, plan: RequestPlan, unit: Unit, cache_dir: Path) -> None:
        self.plan = plan
        self.unit = unit
        self._cache_dir = cache_dir
        self.name = plan.spec.name
        self.request_fields = plan.spec.request
        self.dependencies = tuple(plan.dependencies)
        self.feature_names = tuple(name for name, _ in plan.spec.features)
        self.feature_inputs = dict(plan.feature_inputs)
        # Each feature's expression type: BOOL, INT, FLOAT or TIMESTAMP (values are
        # float64 whatever the type; callers convert booleans for output).
        self.feature_types = dict(plan.feature_types)

    @cached_property
    def _eval(self) -> Callable[..., None]:
        return load_module(self._cache_dir, self.unit).evaluate

    def inputs_of(self, features: Iterable[str]) -> RequestInputs:
        """The request fields and view features that `features` (of this view) read."""
        inputs = RequestInputs()
        for feature in features:
            inputs = inputs.union(self.feature_inputs[feature])
        return inputs

    def warm(self) -> None:
        """Compile (or load from the disk cache) the kernel now."""
        self.evaluate({name: _empty(kind) for name, kind in self.request_fields},
                      {ref: np.zeros(0) for ref in self.dependencies})

    def evaluate(self, request: Mapping[str, np.ndarray],
                 features: Mapping[tuple[str, str], np.ndarray]) -> np.ndarray:
        """Request features: float64 [n_features, n] (NaN for null).

        Numeric, boolean and timestamp fields are float64 arrays (NaN for null);
        string fields hold str or None (a list, an object array or an Arrow array).
        """
        named = dict(request)
        named.update({f"{view}.{feature}": v for (view, feature), v in features.items()})
        n = len(next(iter(named.values()))) if named else 0
        return self._run(named, n)

    def evaluate_given(self, request: Mapping[str, np.ndarray],
                       features: Mapping[tuple[str, str], np.ndarray], rows: int) -> np.ndarray:
        """Request features from some of their inputs, the others taken as null.

        The kernel computes every feature of the view at once; a caller that wants only
        some passes what those read (`inputs_of`). Rows of the other features are
        computed from nulls and mean nothing: the caller discards them.

        Args:
            request: request field → values, for the fields that are given.
            features: (view, feature) → values, for the view features that are given.
            rows: the number of rows (every given array has this length).

        Returns:
            float64 [n_features, rows] (NaN for null), in `feature_names` order.
        """
        missing = np.full(rows, np.nan)
        nothing = np.full(rows, None, dtype=object)
        named = {name: request.get(name, nothing if kind == ColumnType.STRING else missing)
                 for name, kind in self.request_fields}
        named.update({f"{view}.{feature}": features.get((view, feature), missing)
                      for view, feature in self.dependencies})
        return self._run(named, rows)

    def _run(self, named: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        # String terms become float64 inputs here, on both paths alike.
        columns = dict(named)
        columns.update((name, evaluate_string_term(term, named))
                       for name, term in self.plan.string_terms)
        matrix = _stack(self.plan.inputs, columns, n)
        out = np.empty((len(self.feature_names), n))
        self._eval(matrix, np.full(1, -1.0), out)
        return out


class CompiledGraph:
    """Every kernel of a registry, by view name (each compiled on first use)."""

    def __init__(self, graph: Graph, units: Sequence[Unit], cache_dir: Path) -> None:
        self.graph = graph
        self.units = tuple(units)
        self.source = "\n\n".join(unit.shown for unit in units)
        self.hash = graph_hash(list(units))
        self._cache_dir = cache_dir
        by_unit = iter(units)
        self.views = {p.spec.name: CompiledView(p, next(by_unit), cache_dir)
                      for p in graph.views}
        self.request_views = {p.spec.name: CompiledRequestView(p, next(by_unit), cache_dir)
                              for p in graph.request_views}

    def compile_missing(self, progress: Progress | None = None) -> None:
        """Compile now every kernel that is not in the cache yet; load nothing else.

        Kernels whose ready mark is there are not even loaded (`apply` of a registry whose
        views are all cached imports no Numba). `progress` gets a line for each unit that
        compiles, and one for the shared engine the first time this cache meets it.
        """
        report = progress or (lambda line: None)
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        mark = engine_mark(self._cache_dir)
        if not mark.exists():
            # Cached machine code needs no loading here; it loads when a kernel runs.
            if not _engine_cached():
                report("compiling the shared kernels (once per machine)")
                _engine().warm()
            mark.touch()
        kernels = [*self.views.values(), *self.request_views.values()]
        for number, compiled in enumerate(kernels, 1):
            mark = ready_mark(self._cache_dir, compiled.unit.module_name)
            if not mark.exists():
                report(f"compiling {compiled.name} ({number}/{len(kernels)})")
                compiled.warm()
                mark.touch()

    def warm(self, progress: Progress | None = None) -> None:
        """Compile what is missing, then load every kernel into this process, so that no
        call waits for one (a server does this before it takes requests)."""
        self.compile_missing(progress)
        _engine().warm()
        for compiled in (*self.views.values(), *self.request_views.values()):
            compiled.warm()


def _engine() -> ModuleType:
    """The shared kernels (importing them imports Numba, so only when a kernel runs)."""
    from transforms import engine

    return engine


def _engine_cached() -> bool:
    """Whether the shared kernels' machine code is in Numba's disk cache already.

    Reads the cache's index (which Numba empties when the engine's source changes); used
    only to say what is about to happen, so any doubt answers False.
    """
    engine = _engine()
    for kernel in (engine.training, engine.states, engine.values):
        try:
            if not kernel._cache._cache_file._load_index():
                return False
        except Exception:
            return False
    return True


def graph_source(spec: GraphSpec) -> tuple[Graph, str, str]:
    """Build the graph and generate its modules: (graph, their joined source, hash)."""
    graph = build_graph(spec)
    units = graph_units(graph)
    return graph, "\n\n".join(unit.shown for unit in units), graph_hash(units)


def compile_graph(spec: GraphSpec, cache_dir: Path | str) -> CompiledGraph:
    """Build the graph and generate its modules; kernels compile on first use.

    Raises:
        transforms.errors.GraphError: a definition cannot be compiled.
    """
    graph = build_graph(spec)
    return CompiledGraph(graph, graph_units(graph), Path(cache_dir))
