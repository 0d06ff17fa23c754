"""Generate the one thing a view really specialises: its row expressions.

Aggregations, windows, tiles and state blobs run in the shared kernels of
`transforms/engine.py`, steered by the view's layout (`transforms/layout.py`). What
cannot be data is an expression: `log1p(amount)`, `amount > 500`. Each feature view gets
a small module with one function,

    rows(X, lits, V, r0, r1)

that evaluates the view's distinct row expressions for events `r0 .. r1 - 1` (X: input
columns × events) into columns of V (events × expressions), and each request view one
with `evaluate(X, lits, out)`. A module is compiled on its own and cached on its own, so
editing one view recompiles at most one small function. The module holds only what its
code depends on (so a new window, aggregation or feature name over the same expressions
changes no module and compiles nothing); `view_notes` describes the rest, each expression
with the features that aggregate it and the view's layout, for `featurestore compile
--show`.
"""

from __future__ import annotations

from transforms.expression_codegen import SUPPORT_FUNCTIONS, ExpressionEmitter, support_source
from transforms.graph import GroupPlan, RequestPlan, ViewPlan

JIT = '@numba.njit(cache=True, nogil=True, error_model="numpy")'
# The expression support functions (null rules of division, comparisons, ...) live in one
# shared generated module that view modules import from; they are inlined into each
# caller, since loading each one's machine code from the cache costs about 0.1 s.
SUPPORT_JIT = '@numba.njit(inline="always", error_model="numpy")'

HEADER = '''\
"""{title}.

Generated from the feature registry; do not edit.
"""

import math

import numba
import numpy as np
'''


def support_module() -> str:
    """The source of the module of expression support functions that view modules import."""
    return "\n\n\n".join([HEADER.format(title="Expression support functions").strip("\n"),
                           support_source(SUPPORT_JIT).strip("\n")]) + "\n"


def view_module(view: ViewPlan, support: str) -> str:
    """The source of a feature view's row-expression module (`support`: the name of the
    support functions' module)."""
    emitter, loads = _emit(view.input_columns, view.literals)
    results = [emitter.value(expr) for expr in view.expressions]
    stores = [f"V[r, {k}] = {name}" for k, name in enumerate(results)]
    body = ["for r in range(r0, r1):", *indent(loads + emitter.lines + stores or ["pass"], 1)]
    function = _function(JIT, "rows(X, lits, V, r0, r1)", body)
    notes = _inputs_comment(view.input_columns, view.literals)
    return _module(f"Row expressions of feature view {view.spec.name!r}", notes, function,
                   support)


def view_notes(view: ViewPlan) -> str:
    """Comment lines describing a view's expressions and layout (not part of its module)."""
    return "\n".join([f"# feature view {view.spec.name!r}", *_expressions_comment(view),
                      *_layout_comment(view)])


def request_module(request: RequestPlan, support: str) -> str:
    """The source of a request view's module (`support`: as for `view_module`)."""
    emitter, loads = _emit(request.inputs, [])
    results = [emitter.value(expr) for expr in request.kernel_expressions]
    stores = [f"out[{k}, r] = {name}" for k, name in enumerate(results)]
    body = ["for r in range(X.shape[1]):", *indent(loads + emitter.lines + stores, 1)]
    function = _function(JIT, "evaluate(X, lits, out)", body)
    notes = [*_inputs_comment(request.inputs, []), "# Features (rows of out):"]
    notes += [f"#   {k}  {name} = {text}" for k, (name, text) in enumerate(request.spec.features)]
    return _module(f"Request view {request.spec.name!r}", notes, function, support)


def _module(title: str, notes: list[str], function: str, support: str) -> str:
    called = [name for name in SUPPORT_FUNCTIONS if f"{name}(" in function]
    imports = f"from {support} import {', '.join(called)}" if called else ""
    parts = [HEADER.format(title=title).rstrip("\n") + ("\n\n" + imports if imports else ""),
             "\n".join([*notes, function])]
    return "\n\n\n".join(part.strip("\n") for part in parts if part) + "\n"


def indent(lines: list[str], level: int) -> list[str]:
    """Indent source lines by `level` steps of four spaces."""
    pad = "    " * level
    return [pad + line if line else line for line in lines]


def _function(decorator: str, head: str, body: list[str]) -> str:
    return "\n".join([decorator, f"def {head}:", *indent(body or ["pass"], 1)])


def _emit(inputs: list[str],
          literals: list[tuple[str, str]]) -> tuple[ExpressionEmitter, list[str]]:
    """An emitter whose inputs are `X[i, r]` and literal codes `lits[k]`."""
    variables = {name: f"c{i}" for i, name in enumerate(inputs)}
    codes = {pair: f"l{k}" for k, pair in enumerate(literals)}
    lines = [f"c{i} = X[{i}, r]" for i in range(len(inputs))]
    lines += [f"l{k} = lits[{k}]" for k in range(len(literals))]
    return ExpressionEmitter(variables, codes), lines


def _inputs_comment(inputs: list[str], literals: list[tuple[str, str]]) -> list[str]:
    lines = ["# Inputs (rows of X):"]
    lines += [f"#   c{i}  {name}" for i, name in enumerate(inputs)] or ["#   (none)"]
    if literals:
        lines.append("# String literals (dictionary codes in lits, -1 when absent):")
        lines += [f"#   l{k}  {column} == {literal!r}"
                  for k, (column, literal) in enumerate(literals)]
    return lines


def _expressions_comment(view: ViewPlan) -> list[str]:
    texts = {f.expr_index: spec.expr for f, spec in zip(view.features, view.spec.features,
                                                         strict=True) if f.expr_index >= 0}
    lines = ["# Expressions (columns of V) and the features that aggregate them:"]
    for k in range(len(view.expressions)):
        users = ", ".join(f.name for f in view.features if f.expr_index == k)
        lines.append(f"#   {k}  {texts[k]}  ->  {users}")
    return lines if view.expressions else [*lines, "#   (none: every feature counts events)"]


def _layout_comment(view: ViewPlan) -> list[str]:
    """The view's tiles and states, as the shared kernels run them (layout.py)."""
    lines = ["# Layout (run by transforms/engine.py):"]
    for group in view.groups:
        lines.append(f"#   hop {_duration(group.hop_us)}: {group.levels} tile levels, "
                     f"{_slots(group.width)}")
        lines += _features_comment(group)
    if view.lifetime.features:
        lines.append(f"#   running state: {_slots(view.lifetime.width)}")
        lines += _features_comment(view.lifetime)
    return lines


def _slots(width: int) -> str:
    return "1 slot" if width == 1 else f"{width} slots"


def _features_comment(group: GroupPlan) -> list[str]:
    lines = []
    for f in group.features:
        window = f" over {_duration(f.window_us)}" if f.window_us else ""
        source = "events" if f.expr_index < 0 else f"V[:, {f.expr_index}]"
        lines.append(f"#     slot {f.offset}: {f.name} = {f.agg}({source}){window}")
    return lines


def _duration(us: int | None) -> str:
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000),
                       ("s", 1_000_000)):
        if us and us % size == 0:
            return f"{us // size}{unit}"
    return f"{us}us"
