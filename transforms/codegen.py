"""Generate the Python source of the kernel module for a graph.

One module holds every kernel of a registry. For each feature view `v<i>`:

- `v<i>_rows(X, lits)`: evaluates the view's distinct row expressions for a batch of
  events (X: input columns × rows) into a rows × expressions matrix;
- per hop group `g<j>`: `empty`, `fold` (one event into a state), `build` (tiles at every
  level, extending older tiles in place), and per window `w<k>`: `merge`, `final` and
  `value` (decompose the tail, merge the tiles in time order, merge the head, finalize);
- `v<i>_training(...)`: values at query times from raw events (the offline path);
- `v<i>_states(...)`: per-entity state blobs as of an end time (materialization, push);
- `v<i>_values(...)`: values at lookup times from state blobs (the online path).

Both paths go through the same `value` functions over tiles built by the same `build`
functions, so their floats agree to the last bit. Request views get `r<i>_eval`.

A state is a row of a 2-D float64 array (column 0 is a tile's key, the slots follow), and
helpers take the array and the row rather than a slice: a slice is a new array object
whose reference counting would cost more than the arithmetic in these inner loops.
"""

from __future__ import annotations

from transforms import aggregations
from transforms.expression_codegen import ExpressionEmitter, support_source
from transforms.graph import FeaturePlan, Graph, GroupPlan, RequestPlan, ViewPlan
from transforms.kernel_templates import (
    BUILD_TEMPLATE,
    HEADER,
    STATES_TEMPLATE,
    TRAINING_TEMPLATE,
    VALUES_TEMPLATE,
    indent,
)

# Entry kernels compile on first use (one specialization each: the Python wrappers in
# compiler.py always pass the same types), so a process that only builds training sets
# never compiles the online kernels; `CompiledGraph.warm()` compiles everything (apply).
JIT = '@numba.njit(cache=True, error_model="numpy")'
# Helpers get explicit signatures: otherwise Numba compiles a new specialization for
# every literal argument it sees (`levels=2`, `m_old=0`, ...), multiplying compile time.
STATE = "float64[:, ::1], int64"
EMPTY_SIG = f'"void({STATE})"'
FOLD_SIG = f'"void({STATE}, int64[::1], float64[:, ::1], int64)"'
BUILD_SIG = ('"int64(int64[::1], float64[:, ::1], int64, int64, float64[:, ::1], int64, '
             'float64[:, ::1], int64)"')
LIFE_FINAL_SIG = f'"void({STATE}, float64[:, ::1], int64, int64)"'

def _slot(array: str, row: str) -> aggregations.Slot:
    return lambda i: f"{array}[{row}, {1 + i}]"


S = _slot("S", "row")


def helper(signature: str) -> str:
    """Decorator line for a function only other kernels call (no Python entry point)."""
    return (f'@numba.njit({signature}, cache=True, error_model="numpy", '
            'no_cpython_wrapper=True)')


def generate_module(graph: Graph) -> str:
    """The full source text of the kernel module for `graph`."""
    parts = [HEADER, support_source(JIT)]
    for i, view in enumerate(graph.views):
        parts.append(_view_source(f"v{i}", view))
    for i, request in enumerate(graph.request_views):
        parts.append(_request_source(f"r{i}", request))
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


def _function(decorator: str, head: str, body: list[str]) -> str:
    return "\n".join([decorator, f"def {head}:", *indent(body or ["pass"], 1)])


def _view_source(prefix: str, view: ViewPlan) -> str:
    parts = [f"# feature view {view.spec.name!r}", _rows_source(prefix, view)]
    for j, group in enumerate(view.groups):
        parts.extend(_group_source(f"{prefix}_g{j}", group))
    parts.extend(_lifetime_source(f"{prefix}_life", view.lifetime))
    context = _kernel_context(prefix, view)
    parts.append(TRAINING_TEMPLATE.substitute(context, sig=JIT))
    parts.append(STATES_TEMPLATE.substitute(context, sig=JIT))
    parts.append(VALUES_TEMPLATE.substitute(context, sig=JIT))
    return "\n\n\n".join(parts)


def _emit(inputs: list[str],
          literals: list[tuple[str, str]]) -> tuple[ExpressionEmitter, list[str]]:
    """An emitter whose inputs are `X[i, r]` and literal codes `lits[k]`."""
    variables = {name: f"c{i}" for i, name in enumerate(inputs)}
    codes = {pair: f"l{k}" for k, pair in enumerate(literals)}
    lines = [f"c{i} = X[{i}, r]" for i in range(len(inputs))]
    lines += [f"l{k} = lits[{k}]" for k in range(len(literals))]
    return ExpressionEmitter(variables, codes), lines


def _rows_source(prefix: str, view: ViewPlan) -> str:
    emitter, loads = _emit(view.input_columns, view.literals)
    results = [emitter.value(expr) for expr in view.expressions]
    stores = [f"V[r, {k}] = {name}" for k, name in enumerate(results)]
    body = [
        "n = X.shape[1]",
        f"V = np.empty((n, {max(len(results), 1)}))",
        "for r in range(n):",
        *indent(loads + emitter.lines + stores or ["pass"], 1),
        "return V",
    ]
    return _function(JIT, f"{prefix}_rows(X, lits)", body)


def _fold_body(group: GroupPlan, state: aggregations.Slot = S) -> list[str]:
    """Fold event `r` (time `ts[r]`) of matrix V into a state."""
    body = ["tf = float(ts[r])"]
    for feature in group.features:
        x = "1.0" if feature.expr_index < 0 else f"V[r, {feature.expr_index}]"
        body.append(f"x{feature.index} = {x}")
        body += aggregations.fold_lines(feature.agg, state, feature.offset,
                                        f"x{feature.index}", "tf")
    return body


def _common_source(prefix: str, group: GroupPlan) -> list[str]:
    empty = [line for f in group.features for line in aggregations.empty_lines(f.agg, S, f.offset)]
    return [
        _function(helper(EMPTY_SIG), f"{prefix}_empty(S, row)", empty),
        _function(helper(FOLD_SIG), f"{prefix}_fold(S, row, ts, V, r)", _fold_body(group)),
    ]


def _life_final_body(features: list[FeaturePlan]) -> list[str]:
    """Finalize lifetime features; a windowed `last` lives here too (see graph.py)."""
    body = []
    for f in features:
        value = aggregations.finalize_expression(f.agg, S, f.offset)
        if f.window_us is not None:
            start = f"floor_div(t, {f.hop_us}) * {f.hop_us} - {f.window_us}"
            value = f"({value} if {S(f.offset)} >= {start} else np.nan)"
        body.append(f"out[{f.index}, col] = {value}")
    return body


def _value_lines(group: GroupPlan, window: int, tiles: str, starts: str, first: str,
                 head: str, hrow: str, acc: str, column: str) -> list[str]:
    """Statements computing one window's features at hop index `B` into out[:, column].

    Written out in the driver loops rather than called: they run for every query and
    window, and the call (many array arguments) costs more than the merges.
    """
    members = [f for f in group.features if f.window_us == window]
    into = _slot(acc, "0")
    lines = [f"nb = decompose(B - {window // group.hop_us}, B, {group.levels}, lv, ix)"]
    lines += [line for f in members for line in aggregations.empty_lines(f.agg, into, f.offset)]
    w = group.windows.index(window)
    lines += [
        f"for level in range({group.levels}):",
        "    hint[level] = -1",
        "for block in range(nb):",
        "    level = lv[block]",
        "    key = tile_key(level, ix[block])",
        # The first tile of this level whose key is >= key: gallop from the previous tile
        # of this level in this window (the next block is usually adjacent), or for the
        # first block of a level from where the previous query's first block was (queries
        # come in time order, so that moves forward), then bisect. Only positions depend
        # on this; the merges, and so the values, do not.
        "    row = hint[level]",
        "    if row < 0:",
        f"        row = {first}[{w}, level]",
        f"        if row > {starts}[level] and {tiles}[row - 1, 0] >= key:",
        f"            row = {starts}[level]",
        f"    end = {starts}[level + 1]",
        "    step = 1",
        f"    while row + step <= end and {tiles}[row + step - 1, 0] < key:",
        "        row += step",
        "        step *= 2",
        "    top = min(end, row + step)",
        "    while row < top:",
        "        middle = (row + top) >> 1",
        f"        if {tiles}[middle, 0] < key:",
        "            row = middle + 1",
        "        else:",
        "            top = middle",
        "    if hint[level] < 0:",
        f"        {first}[{w}, level] = row",
        "    hint[level] = row",
        f"    if row < end and {tiles}[row, 0] == key:",
    ]
    tile = _slot(tiles, "row")
    lines += indent([line for f in members
                     for line in aggregations.merge_lines(f.agg, into, tile, f.offset)], 2)
    lines += [line for f in members
              for line in aggregations.merge_lines(f.agg, into, _slot(head, hrow), f.offset)]
    lines += [f"out[{f.index}, {column}] = "
              f"{aggregations.finalize_expression(f.agg, into, f.offset)}" for f in members]
    return lines


def _group_source(prefix: str, group: GroupPlan) -> list[str]:
    parts = _common_source(prefix, group)
    # The fold is written into the build loop itself: it runs once per event and level,
    # and a call there costs more than the fold.
    fold = "\n".join(indent(_fold_body(group, _slot("T", "m")), 4))
    parts.append(BUILD_TEMPLATE.substitute(jit=helper(BUILD_SIG), p=prefix, fold=fold,
                                           levels=group.levels, hop=group.hop_us))
    return parts


def _lifetime_source(prefix: str, group: GroupPlan) -> list[str]:
    parts = _common_source(prefix, group)
    parts.append(_function(helper(LIFE_FINAL_SIG), f"{prefix}_final(S, row, out, col, t)",
                           _life_final_body(group.features)))
    return parts


def _kernel_context(prefix: str, view: ViewPlan) -> dict[str, str]:
    """Template fields for the three driver kernels of one view."""
    groups = list(enumerate(view.groups))

    def values(j: int, head: str, hrow: str, column: str, level: int) -> str:
        group = view.groups[j]
        lines = [line for window in group.windows
                 for line in _value_lines(group, window, f"T{j}", f"starts{j}", f"first{j}",
                                          head, hrow, f"acc{j}", column)]
        return "\n".join(indent(lines, level))

    return {
        "p": prefix,
        "ngroups": str(len(groups)),
        "life_width": str(view.lifetime.width),
        "max_blocks": str(max([g.block_bound() for _, g in groups] + [1])),
        "max_levels": str(max([g.levels for _, g in groups] + [1]) + 1),
        "alloc_groups": "\n".join(
            f"    head{j} = np.empty((1, {g.width + 1}))\n"
            f"    acc{j} = np.empty((1, {g.width + 1}))\n"
            f"    none{j} = np.empty((0, {g.width + 1}))\n"
            f"    starts{j} = np.empty({g.levels + 1}, np.int64)\n"
            f"    first{j} = np.empty(({len(g.windows)}, {g.levels}), np.int64)"
            for j, g in groups),
        "alloc_tiles": "\n".join(
            f"    T{j} = np.empty(({g.levels} * longest + 1, {g.width + 1}))" for j, g in groups),
        "alloc_scratch": "\n".join(
            f"    T{j} = np.empty(({g.levels} * longest + most_old // {g.width + 1} + 1, "
            f"{g.width + 1}))" for j, g in groups),
        "build_groups": "\n".join(
            f"        m{j} = {prefix}_g{j}_build(ts, V, e0, e1, none{j}, 0, T{j}, MIN_TIME)\n"
            f"        level_starts(T{j}, m{j}, {g.levels}, starts{j})\n"
            f"        restart_searches(starts{j}, first{j})\n"
            f"        h{j} = e0" for j, g in groups),
        "head_groups": "\n".join(
            f"            B = floor_div(t, {g.hop_us})\n"
            f"            while h{j} < p and ts[h{j}] < B * {g.hop_us}:\n"
            f"                h{j} += 1\n"
            f"            {prefix}_g{j}_empty(head{j}, 0)\n"
            f"            for r in range(h{j}, p):\n"
            f"                {prefix}_g{j}_fold(head{j}, 0, ts, V, r)\n"
            + values(j, f"head{j}", "0", "c", 3) for j, g in groups),
        "tile_bound": " + ".join(
            [f"{g.levels} * (k - i) * {g.width + 1}" for _, g in groups] + ["0"]),
        "states_groups": _states_groups(prefix, groups),
        "values_groups": "\n".join(_values_group(prefix, j, g, values(j, "H", "hrow", "b", 0))
                                   for j, g in groups),
    }


def _states_groups(prefix: str, groups: list[tuple[int, GroupPlan]]) -> str:
    lines = []
    for j, g in groups:
        w = g.width + 1
        lines += [
            f"m_old = int(old_data[a0 + 1 + {j}]) if has_old else 0",
            f"old = old_data[pos_old:pos_old + m_old * {w}].reshape((m_old, {w}))",
            f"pos_old += m_old * {w}",
            f"cutoff = floor_div(end, {g.hop_us}) * {g.hop_us} - {g.max_window_us}",
            f"m = {prefix}_g{j}_build(ts, V, e0, e1, old, m_old, T{j}, cutoff)",
            f"data[o + 1 + {j}] = m",
            f"copy_rows(T{j}, m, data, w)",
            f"w += m * {w}",
        ]
    return "\n".join(indent(lines, 2))


def _values_group(prefix: str, j: int, g: GroupPlan, calls: str) -> str:
    w = g.width + 1
    lines = [
        f"m = int(data[a0 + 1 + {j}]) if a1 > a0 else 0",
        f"T{j} = data[pos:pos + m * {w}].reshape((m, {w}))",
        f"pos += m * {w}",
        f"level_starts(T{j}, m, {g.levels}, starts{j})",
        f"restart_searches(starts{j}, first{j})",
        f"B = floor_div(t, {g.hop_us})",
        # Online the head is the level-0 tile holding floor(at, hop): lookups are at or
        # after the end of every event folded into it (docs/decisions.md).
        f"hrow = find_tile(T{j}, m, tile_key(0, B))",
        f"H = T{j}",
        "if hrow < 0:",
        f"    {prefix}_g{j}_empty(head{j}, 0)",
        f"    H = head{j}",
        "    hrow = 0",
        *calls.splitlines(),
    ]
    return "\n".join(indent(lines, 2))


def _request_source(prefix: str, request: RequestPlan) -> str:
    emitter, loads = _emit(request.inputs, [])
    results = [emitter.value(expr) for expr in request.expressions]
    stores = [f"out[{k}, r] = {name}" for k, name in enumerate(results)]
    body = ["for r in range(X.shape[1]):", *indent(loads + emitter.lines + stores, 1)]
    return "\n".join([f"# request view {request.spec.name!r}",
                      _function(JIT, f"{prefix}_eval(X, lits, out)", body)])
