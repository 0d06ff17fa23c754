"""Aggregation state layouts and the Python source that folds, merges and finalizes them.

Each aggregation keeps a few float64 *slots* in a state vector. The same three
operations exist for every aggregation and are emitted as source text by the code
generator:

- fold: add one event (time `t`, value `x`; NaN `x` is a null and is skipped);
- merge: combine a later state `b` into an earlier accumulator `a` (time order matters
  only for first/last ties, which break by value, so merging is exact and deterministic);
- finalize: turn a state into the feature value (NaN is null).

An empty state is the identity of merge, bit for bit: that is what lets both paths skip
empty tiles and still agree to the last bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transforms.spec import AGGREGATIONS


@dataclass(frozen=True)
class StateLayout:
    """Slots of one aggregation: their names (for docs) and empty values."""

    slots: tuple[str, ...]
    empty: tuple[str, ...]  # source literals


NAN = "np.nan"

Slot = Callable[[int], str]
"""Source text of slot i of a state, e.g. `lambda i: f"S[row, {1 + i}]"`: states live in
rows of 2-D arrays, so kernels index them in place instead of slicing (a slice is a new
array object, and its reference counting costs more than the arithmetic)."""

LAYOUTS: dict[str, StateLayout] = {
    "count": StateLayout(("n",), ("0.0",)),
    "sum": StateLayout(("s",), ("0.0",)),
    "mean": StateLayout(("n", "s"), ("0.0", "0.0")),
    "std": StateLayout(("n", "mean", "m2"), ("0.0", "0.0", "0.0")),
    "min": StateLayout(("v",), (NAN,)),
    "max": StateLayout(("v",), (NAN,)),
    "first": StateLayout(("ts", "v"), (NAN, NAN)),
    "last": StateLayout(("ts", "v"), (NAN, NAN)),
}

if set(LAYOUTS) != set(AGGREGATIONS):  # keep the two lists from drifting apart
    raise RuntimeError("aggregation layouts and names disagree")


def width(agg: str) -> int:
    """Number of float64 slots the aggregation's state takes."""
    return len(LAYOUTS[agg].slots)


def empty_lines(agg: str, st: Slot, o: int) -> list[str]:
    """Statements that reset the slots at offset `o` of state `st` to empty."""
    return [f"{st(o + i)} = {value}" for i, value in enumerate(LAYOUTS[agg].empty)]


def fold_lines(agg: str, st: Slot, o: int, x: str, t: str) -> list[str]:
    """Statements that fold value `x` observed at time `t` into the state."""
    if agg == "count":
        return [f"if {x} == {x}:", f"    {st(o)} += 1.0"]
    if agg == "sum":
        return [f"if {x} == {x}:", f"    {st(o)} += {x}"]
    if agg == "mean":
        return [f"if {x} == {x}:", f"    {st(o)} += 1.0", f"    {st(o + 1)} += {x}"]
    if agg == "std":
        # Welford's update: stable where the naive sum of squares cancels.
        return [
            f"if {x} == {x}:",
            f"    {st(o)} += 1.0",
            f"    _d = {x} - {st(o + 1)}",
            f"    {st(o + 1)} += _d / {st(o)}",
            f"    {st(o + 2)} += _d * ({x} - {st(o + 1)})",
        ]
    if agg in ("min", "max"):
        keep = "<=" if agg == "min" else ">="
        # `not (v <= x)` is also true while v is NaN (empty).
        return [f"if {x} == {x} and not ({st(o)} {keep} {x}):", f"    {st(o)} = {x}"]
    # first / last: the earliest / latest event; equal times keep the smaller / larger value.
    before, better = ("<=", "<") if agg == "first" else (">=", ">")
    return [
        f"if {x} == {x} and (not ({st(o)} {before} {t}) or "
        f"({st(o)} == {t} and {x} {better} {st(o + 1)})):",
        f"    {st(o)} = {t}",
        f"    {st(o + 1)} = {x}",
    ]


def merge_lines(agg: str, a: Slot, b: Slot, o: int) -> list[str]:
    """Statements that merge the slots at offset `o` of state `b` into state `a`."""
    if agg in ("count", "sum"):
        return [f"{a(o)} += {b(o)}"]
    if agg == "mean":
        return [f"{a(o)} += {b(o)}", f"{a(o + 1)} += {b(o + 1)}"]
    if agg == "std":
        # Chan et al.'s pairwise merge; an empty side is skipped so that merging an
        # empty tile is an exact identity.
        return [
            f"if {b(o)} > 0.0:",
            f"    if {a(o)} == 0.0:",
            f"        {a(o)} = {b(o)}",
            f"        {a(o + 1)} = {b(o + 1)}",
            f"        {a(o + 2)} = {b(o + 2)}",
            "    else:",
            f"        _n = {a(o)} + {b(o)}",
            f"        _d = {b(o + 1)} - {a(o + 1)}",
            f"        {a(o + 2)} += {b(o + 2)} + _d * _d * {a(o)} * {b(o)} / _n",
            f"        {a(o + 1)} += _d * {b(o)} / _n",
            f"        {a(o)} = _n",
        ]
    if agg in ("min", "max"):
        keep = "<=" if agg == "min" else ">="
        return [
            f"if {b(o)} == {b(o)} and not ({a(o)} {keep} {b(o)}):",
            f"    {a(o)} = {b(o)}",
        ]
    before, better = ("<=", "<") if agg == "first" else (">=", ">")
    return [
        f"if {b(o)} == {b(o)} and (not ({a(o)} {before} {b(o)}) or "
        f"({a(o)} == {b(o)} and {b(o + 1)} {better} {a(o + 1)})):",
        f"    {a(o)} = {b(o)}",
        f"    {a(o + 1)} = {b(o + 1)}",
    ]


def finalize_expression(agg: str, st: Slot, o: int) -> str:
    """A source expression for the feature value held in the state (NaN is null)."""
    if agg in ("count", "sum", "min", "max"):
        return f"{st(o)}"
    if agg == "mean":
        return f"({st(o + 1)} / {st(o)} if {st(o)} > 0.0 else np.nan)"
    if agg == "std":
        return f"(math.sqrt(max({st(o + 2)}, 0.0) / {st(o)}) if {st(o)} > 0.0 else np.nan)"
    return f"{st(o + 1)}"
