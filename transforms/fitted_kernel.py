"""Applying fitted transforms: one compiled kernel for training sets and lookups.

A service's transforms and their frozen statistics become a small *program* (one int64
row per transform) and a float64 array of parameters, built once per fitted artifact
(`FittedProgram`). Each call then passes its input columns (numbers, or category codes)
and, for categorical transforms, a table with one entry per category the call holds:
its vocabulary rank, hash bucket or one-hot position, computed from the category's text
(`category_table`). The kernel reads only these arrays, so a training set and an online
lookup that give it the same inputs get the same floats.

Null rules (docs/registry.md): every function maps null to null, except `impute` (which
fills it) and `one_hot` (all zeros). `log1p` of x <= -1 is null. Unseen categories go to
the `vocabulary`'s OOV buckets (null with `oov_buckets: 0`) and to no `one_hot` column.

All jitted code of this module lives in this one file: Numba's disk cache of a function
does not notice when a function it calls, in another file, changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from transforms.analyzers import Statistics
from transforms.fitted_functions import TransformSpec

# Operation codes, and the columns of a program row.
AFFINE, BUCKET, CLIP, FILL, LOG1P, GATHER, ONE_HOT, FILL_TABLE = range(8)
OP, INPUT, PARAM, PARAM_COUNT, TABLE, OUT, WIDTH = range(7)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def apply_program(inputs: np.ndarray, program: np.ndarray, params: np.ndarray,
                  tables: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - jitted
    """Run every transform of `program` over the rows of `inputs` into `out`.

    Args:
        inputs: (input columns, rows) float64; NaN is null; categorical inputs hold
            codes into the call's categories.
        program: (transforms, 7) int64 rows of op, input, param start and count,
            table start, first output row and output width.
        params: the frozen statistics.
        tables: per-call category tables (see `category_table`).
        out: (output columns, rows) float64, written.
    """
    rows = inputs.shape[1]
    for t in range(program.shape[0]):
        op = program[t, 0]
        column = program[t, 1]
        p = program[t, 2]
        count = program[t, 3]
        table = program[t, 4]
        o = program[t, 5]
        width = program[t, 6]
        for i in range(rows):
            v = inputs[column, i]
            if op == 0:  # AFFINE
                out[o, i] = (v - params[p]) / params[p + 1]
            elif op == 1:  # BUCKET: how many boundaries are <= v
                if np.isnan(v):
                    out[o, i] = np.nan
                else:
                    low = 0
                    high = count
                    while low < high:
                        middle = (low + high) // 2
                        if params[p + middle] <= v:
                            low = middle + 1
                        else:
                            high = middle
                    out[o, i] = float(low)
            elif op == 2:  # CLIP
                if np.isnan(v):
                    out[o, i] = np.nan
                else:
                    out[o, i] = min(max(v, params[p]), params[p + 1])
            elif op == 3:  # FILL
                out[o, i] = params[p] if np.isnan(v) else v
            elif op == 4:  # LOG1P
                out[o, i] = np.log1p(v) if v > -1.0 else np.nan
            elif op == 5:  # GATHER
                out[o, i] = np.nan if np.isnan(v) else tables[table + np.int64(v)]
            elif op == 6:  # ONE_HOT
                position = -1.0 if np.isnan(v) else tables[table + np.int64(v)]
                for j in range(width):
                    out[o + j, i] = 1.0 if position == j else 0.0
            else:  # FILL_TABLE: the fill's code is per call
                out[o, i] = tables[table] if np.isnan(v) else v


def stable_hash(text: str) -> int:
    """A hash of text that is the same in every process and on every machine (Python's
    own `hash` of a str is salted per process): BLAKE2b, 8 bytes, little-endian."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class FittedTransform:
    """One transform with its frozen statistics, as the kernel needs it.

    Attributes:
        spec: the definition.
        input: which input column (index into the call's inputs) it reads.
        statistics: the fitted statistics.
    """

    spec: TransformSpec
    input: int
    statistics: Statistics

    @property
    def categorical(self) -> bool:
        """Reads its input as categories (codes into the call's keys)."""
        return self.spec.categorical

    def output_names(self) -> list[str]:
        """Its output columns: one, or `name__<value>` per one-hot value."""
        if self.spec.fn == "one_hot":
            return [f"{self.spec.name}__{value}" for value in self.values]
        return [self.spec.name]

    @property
    def values(self) -> list[str]:
        """A vocabulary's or one-hot's fitted values, in rank order."""
        return list(self.statistics.get("values", []))  # type: ignore[call-overload]

    def category_table(self, keys: Sequence[str]) -> tuple[np.ndarray, list[str] | None]:
        """This call's table for a categorical transform over categories `keys`.

        Returns:
            The table, and for a string `impute` the output's categories (`keys` and
            the fill when it is not among them); None otherwise.
        """
        fn = self.spec.fn
        if fn == "impute":
            fill = str(self.statistics["fill"])
            out_keys = list(keys)
            if fill not in out_keys:
                out_keys.append(fill)
            return np.array([float(out_keys.index(fill))]), out_keys
        if fn == "hash_bucket":
            buckets = int(self.spec.parameter("buckets"))  # type: ignore[call-overload]
            return np.array([float(stable_hash(key) % buckets) for key in keys]), None
        rank = {value: float(index) for index, value in enumerate(self.values)}
        if fn == "one_hot":
            return np.array([rank.get(key, -1.0) for key in keys]), None
        oov = int(self.spec.parameter("oov_buckets"))  # type: ignore[call-overload]
        size = len(rank)
        table = [rank[key] if key in rank else
                 (float(size + stable_hash(key) % oov) if oov else np.nan) for key in keys]
        return np.array(table, np.float64), None


def _parameters(fitted: FittedTransform) -> tuple[int, list[float]]:
    """The op code and frozen parameters of a transform."""
    fn, stats = fitted.spec.fn, fitted.statistics
    if fn == "zscore":
        return AFFINE, [float(stats["mean"]), float(stats["scale"])]  # type: ignore[arg-type]
    if fn == "min_max":
        return AFFINE, [float(stats["min"]), float(stats["scale"])]  # type: ignore[arg-type]
    if fn == "robust_scale":
        return AFFINE, [float(stats["median"]), float(stats["scale"])]  # type: ignore[arg-type]
    if fn == "quantile_bucket":
        return BUCKET, [float(b) for b in stats["boundaries"]]  # type: ignore[attr-defined]
    if fn == "clip_quantiles":
        return CLIP, [float(stats["lower"]), float(stats["upper"])]  # type: ignore[arg-type]
    if fn == "log1p":
        return LOG1P, []
    if fn == "impute":
        if fitted.categorical:
            return FILL_TABLE, []
        return FILL, [float(stats["fill"])]  # type: ignore[arg-type]
    if fn == "one_hot":
        return ONE_HOT, []
    return GATHER, []  # vocabulary, hash_bucket


class FittedProgram:
    """A service's fitted transforms, ready to run over any number of rows.

    Args:
        transforms: the transforms in output order.
        inputs: how many input columns a call passes.
    """

    def __init__(self, transforms: Sequence[FittedTransform], inputs: int) -> None:
        self.transforms = tuple(transforms)
        self.inputs = inputs
        rows, params = [], []
        out = 0
        for fitted in self.transforms:
            op, values = _parameters(fitted)
            width = len(fitted.output_names())
            rows.append([op, fitted.input, len(params), len(values), 0, out, width])
            params.extend(values)
            out += width
        self.program = np.array(rows, np.int64).reshape(len(rows), 7)
        self.params = np.array(params, np.float64)
        self.outputs = out

    def run(self, inputs: np.ndarray,
            keys: Mapping[int, Sequence[str]]) -> tuple[np.ndarray, dict[int, list[str]]]:
        """Apply every transform.

        Args:
            inputs: (self.inputs, rows) float64: numbers, or codes into `keys[i]` for
                the categorical inputs.
            keys: input index → the call's categories, for categorical inputs.

        Returns:
            (outputs, rows) float64, and per transform index whose output is categorical
            (a string `impute`), the categories its output codes point into.
        """
        program = self.program.copy()
        tables: list[np.ndarray] = []
        start = 0
        out_keys: dict[int, list[str]] = {}
        for index, fitted in enumerate(self.transforms):
            if not fitted.categorical:
                continue
            table, categories = fitted.category_table(keys[fitted.input])
            program[index, TABLE] = start
            start += len(table)
            tables.append(table)
            if categories is not None:
                out_keys[index] = categories
        table_array = np.concatenate(tables) if tables else np.zeros(0)
        out = np.empty((self.outputs, inputs.shape[1]), np.float64)
        apply_program(np.ascontiguousarray(inputs, np.float64), program, self.params,
                      table_array, out)
        return out, out_keys


def warm() -> None:
    """Compile the kernel now, or load it from Numba's disk cache (see `engine.warm`)."""
    empty = np.zeros((0, 0))
    apply_program(empty, np.zeros((0, 7), np.int64), np.zeros(0), np.zeros(0), empty)
