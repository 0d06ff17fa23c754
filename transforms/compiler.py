"""Compile a graph into loaded kernels, cached on disk.

The generated module is written to `<cache_dir>/fs_kernels_<hash>.py` and imported from
there, so Numba's own on-disk cache (`cache=True`, kept in `__pycache__` beside the file)
applies: a second process with the same registry finds both the module and its machine
code and compiles nothing. The hash covers the generated source and the Numba version;
the file is only ever created, never rewritten, because Numba keys its cache on the
file's modification time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numba
import numpy as np

from transforms import windows
from transforms.codegen import generate_module
from transforms.fingerprints import view_fingerprint
from transforms.graph import Graph, RequestInputs, RequestPlan, ViewPlan, build_graph
from transforms.spec import ColumnType, GraphSpec

CODEGEN_VERSION = "1"


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


def _int64(values: np.ndarray | Sequence[int]) -> np.ndarray:
    # The kernels' signatures take writable arrays; Arrow hands out read-only views.
    return np.require(values, dtype=np.int64, requirements=["C", "W"])


class CompiledView:
    """The loaded kernels of one feature view (see docs/architecture.md)."""

    def __init__(self, plan: ViewPlan, module: ModuleType, prefix: str) -> None:
        self.plan = plan
        self.name = plan.spec.name
        # What the states this view builds depend on: equal fingerprints, same states.
        self.fingerprint = view_fingerprint(plan)
        self.input_columns = tuple(plan.input_columns)
        self.string_columns = tuple(plan.string_columns)
        self.feature_names = tuple(f.name for f in plan.features)
        self.feature_types = {f.name: f.result_type for f in plan.features}
        self.string_feature_columns = self._string_feature_columns()
        windows = [g.max_window_us + g.hop_us for g in plan.groups]
        self.horizon_us = max(windows, default=0)
        self._rows = getattr(module, f"{prefix}_rows")
        self._training = getattr(module, f"{prefix}_training")
        self._states = getattr(module, f"{prefix}_states")
        self._values = getattr(module, f"{prefix}_values")

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
        return self._rows(matrix, self.literal_codes(dictionaries))

    def training_values(self, entity: np.ndarray, ts: np.ndarray,
                        columns: Mapping[str, np.ndarray],
                        dictionaries: Mapping[str, Sequence[str]],
                        query_entity: np.ndarray, query_ts: np.ndarray) -> np.ndarray:
        """Feature values at query times from raw events (offline path).

        Events and queries must be sorted by (entity, time). Returns float64
        [n_features, n_queries] with NaN for null.
        """
        entity, ts = _int64(entity), _int64(ts)
        values = self.rows(columns, dictionaries, len(entity))
        out = np.empty((len(self.feature_names), len(query_entity)))
        self._training(entity, ts, values, _int64(query_entity), _int64(query_ts), out)
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
        data, offsets, entities = self._states(entity, ts, values, old_data, old_offsets,
                                               int(end_us))
        raw = data.tobytes()
        blobs = [raw[offsets[i] * 8:offsets[i + 1] * 8] for i in range(len(entities))]
        return EntityStates(entities=entities, blobs=blobs)

    def warm(self) -> None:
        """Compile (or load from the disk cache) every kernel of this view now."""
        none = np.zeros(0, np.int64)
        columns = {name: np.zeros(0) for name in self.input_columns}
        self.training_values(none, none, columns, {}, none, none)
        self.update_states([], none, none, columns, {}, 0)
        self.values_from_states([], 0)

    def values_from_states(self, blobs: Sequence[bytes | None],
                           at_us: int | np.ndarray) -> np.ndarray:
        """Feature values at `at_us` (one time, or one per blob) from state blobs (online)."""
        data, offsets = _pack(blobs)
        at = np.broadcast_to(np.asarray(at_us, dtype=np.int64), (len(blobs),)).copy()
        out = np.empty((len(self.feature_names), len(blobs)))
        self._values(data, offsets, np.ascontiguousarray(at), out)
        return out


class CompiledRequestView:
    """The loaded kernel of one request view."""

    def __init__(self, plan: RequestPlan, module: ModuleType, prefix: str) -> None:
        self.plan = plan
        self.name = plan.spec.name
        self.request_fields = plan.spec.request
        self.dependencies = tuple(plan.dependencies)
        self.feature_names = tuple(name for name, _ in plan.spec.features)
        self.feature_inputs = dict(plan.feature_inputs)
        self._eval = getattr(module, f"{prefix}_eval")

    def inputs_of(self, features: Iterable[str]) -> RequestInputs:
        """The request fields and view features that `features` (of this view) read."""
        inputs = RequestInputs()
        for feature in features:
            inputs = inputs.union(self.feature_inputs[feature])
        return inputs

    def warm(self) -> None:
        """Compile (or load from the disk cache) the kernel now."""
        inputs = [name for name, _ in self.request_fields]
        self.evaluate({name: np.zeros(0) for name in inputs},
                      {ref: np.zeros(0) for ref in self.dependencies})

    def evaluate(self, request: Mapping[str, np.ndarray],
                 features: Mapping[tuple[str, str], np.ndarray]) -> np.ndarray:
        """Request features: float64 [n_features, n] (NaN for null)."""
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
        named = {name: request.get(name, missing) for name, _ in self.request_fields}
        named.update({f"{view}.{feature}": features.get((view, feature), missing)
                      for view, feature in self.dependencies})
        return self._run(named, rows)

    def _run(self, named: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        fields = [name for name, _ in self.request_fields]
        matrix = _stack([*fields, *(f"{v}.{f}" for v, f in self.dependencies)], named, n)
        out = np.empty((len(self.feature_names), n))
        self._eval(matrix, np.full(1, -1.0), out)
        return out


class CompiledGraph:
    """Every compiled kernel of a registry, by view name."""

    def __init__(self, graph: Graph, source: str, digest: str, module: ModuleType) -> None:
        self.graph = graph
        self.source = source
        self.hash = digest
        self.views = {p.spec.name: CompiledView(p, module, f"v{i}")
                      for i, p in enumerate(graph.views)}
        self.request_views = {p.spec.name: CompiledRequestView(p, module, f"r{i}")
                              for i, p in enumerate(graph.request_views)}

    def warm(self) -> None:
        """Compile (or load from the disk cache) every kernel now, not on first use."""
        for kernels in (*self.views.values(), *self.request_views.values()):
            kernels.warm()


# The generated module calls these kernels; Numba's cache of a caller does not notice when
# a callee's source changes, so their text is part of the cache key.
_RUNTIME_SOURCE = Path(windows.__file__).read_text()


def graph_source(spec: GraphSpec) -> tuple[Graph, str, str]:
    """Build the graph and generate its module: (graph, source, hash)."""
    graph = build_graph(spec)
    source = generate_module(graph)
    key = f"{CODEGEN_VERSION}\n{numba.__version__}\n{_RUNTIME_SOURCE}\n{source}"
    return graph, source, hashlib.sha256(key.encode()).hexdigest()[:20]


def compile_graph(spec: GraphSpec, cache_dir: Path | str) -> CompiledGraph:
    """Generate, cache and load the kernels for `spec`.

    Raises:
        transforms.errors.GraphError: a definition cannot be compiled.
    """
    graph, source, digest = graph_source(spec)
    name = f"fs_kernels_{digest}"
    module = sys.modules.get(name) or _load(Path(cache_dir), name, source)
    return CompiledGraph(graph, source, digest, module)


def _load(cache_dir: Path, name: str, source: str) -> ModuleType:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}.py"
    if not path.exists():
        # Write then rename: a concurrent process sees no file or the whole file.
        handle, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(handle, "w") as file:
            file.write(source)
        os.replace(temporary, path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load generated kernels from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
