"""The emitted kernel code against the plain-Python reference evaluator.

Emitted statements are compiled with Numba (numpy error model, as in the kernel module)
and evaluated on rows with nulls, zeros, negative numbers, infinities and boundary
timestamps. Numba compiles are slow, so the support functions are compiled once and
every kernel covers many expressions; one test compiles a module file exactly as the
kernel module is compiled (inlined support functions, on-disk cache).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.transforms.reference_expressions import evaluate
from transforms.expression_codegen import (
    SUPPORT_FUNCTIONS,
    SUPPORT_IMPORTS,
    ExpressionEmitter,
    support_source,
)
from transforms.expression_types import infer_type
from transforms.expressions import (
    Expr,
    ExpressionError,
    Literal,
    parse_expression,
    string_literals,
)
from transforms.spec import ColumnType

# The decorator the kernel module puts on every support function, and a cheaper one.
INLINE = '@numba.njit(cache={cache}, error_model="numpy", inline="always")'
PLAIN = '@numba.njit(error_model="numpy")'
TYPES = {
    "f": ColumnType.FLOAT,
    "g": ColumnType.FLOAT,
    "i": ColumnType.INT,
    "b": ColumnType.BOOL,
    "s": ColumnType.STRING,
    "ts": ColumnType.TIMESTAMP,
    "tu": ColumnType.TIMESTAMP,
    "v.x": ColumnType.FLOAT,
}
COLUMNS = tuple(TYPES)
DICTIONARY = ("a", "b", "c")  # sorted, code = index
STRING_LITERALS = ("a", "c", "zz")  # "zz" is not in the dictionary: code -1
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


# ---------------------------------------------------------------------------------------
# Harness: emit, build a module, compile, run.


def _code(literal: str) -> float:
    return float(DICTIONARY.index(literal)) if literal in DICTIONARY else -1.0


def kernel_source(exprs: Sequence[Expr], cache_flag: bool = False) -> str:
    """Source of `kernel(X, out)`: evaluates `exprs` for every column of X (columns ×
    rows) into the rows of `out`."""
    variables = {name: f"c{k}" for k, name in enumerate(COLUMNS)}
    pairs = sorted(set().union(*(string_literals(expr) for expr in exprs)))
    codes = {pair: f"l{k}" for k, pair in enumerate(pairs)}
    emitter = ExpressionEmitter(variables, codes)
    results = [emitter.value(expr) for expr in exprs]
    body = [f"c{k} = X[{k}, r]" for k in range(len(COLUMNS))]
    body += [f"l{k} = {_code(literal)!r}" for k, (_, literal) in enumerate(pairs)]
    body += emitter.lines
    body += [f"out[{k}, r] = {name}" for k, name in enumerate(results)]
    loop = "\n".join(f"        {line}" for line in body)
    return "\n".join(
        [
            f'@numba.njit(cache={cache_flag}, error_model="numpy")',
            "def kernel(X, out):",
            "    for r in range(X.shape[1]):",
            loop,
            "",
        ]
    )


def module_source(exprs: Sequence[Expr], cache_flag: bool) -> str:
    """A whole kernel module, laid out as the kernel code generator lays it out."""
    header = [*SUPPORT_IMPORTS, "import numba", ""]
    support = support_source(INLINE.format(cache=cache_flag))
    return "\n".join([*header, support, "", kernel_source(exprs, cache_flag)])


@cache
def support_namespace() -> dict[str, object]:
    """The support functions, compiled once per test session and shared by every kernel
    (without inlining: inlining changes compile time, not results, and is tested once)."""
    namespace: dict[str, object] = {}
    source = "\n".join([*SUPPORT_IMPORTS, "import numba", support_source(PLAIN)])
    exec(compile(source, "<expression support>", "exec"), namespace)
    return namespace


def compile_kernel(exprs: Sequence[Expr]) -> Callable[[np.ndarray, np.ndarray], None]:
    namespace = dict(support_namespace())
    exec(compile(kernel_source(exprs), "<expression kernel>", "exec"), namespace)
    return namespace["kernel"]  # type: ignore[return-value]


def encode(rows: Sequence[Mapping[str, object]]) -> np.ndarray:
    """Rows as the kernel sees them: float64, NaN for null, strings as codes."""
    matrix = np.full((len(COLUMNS), len(rows)), np.nan)
    for r, row in enumerate(rows):
        for k, name in enumerate(COLUMNS):
            value = row[name]
            if isinstance(value, str):
                matrix[k, r] = DICTIONARY.index(value)
            elif value is not None:
                matrix[k, r] = float(value)  # type: ignore[arg-type]
    return matrix


def run(exprs: Sequence[Expr], rows: Sequence[Mapping[str, object]], kernel=None) -> np.ndarray:
    kernel = kernel or compile_kernel(exprs)
    out = np.empty((len(exprs), len(rows)))
    kernel(encode(rows), out)
    return out


def agrees(kernel_value: float, expected: object) -> bool:
    if expected is None:
        return math.isnan(kernel_value)
    if isinstance(expected, str):
        return DICTIONARY[int(kernel_value)] == expected
    return math.isclose(kernel_value, expected, rel_tol=1e-12)  # type: ignore[arg-type]


def assert_matches_reference(exprs, rows, out) -> None:
    for k, expr in enumerate(exprs):
        for r, row in enumerate(rows):
            expected = evaluate(expr, row)
            assert agrees(out[k, r], expected), (
                f"{expr.span.text if expr.span else expr!r} on {row}: "
                f"kernel {out[k, r]!r}, reference {expected!r}"
            )


# ---------------------------------------------------------------------------------------
# Strategies: typed expression text over the columns above, and rows with edge values.

NUMBER_LEAVES = st.sampled_from(
    ["f", "g", "i", "b", "v.x", "0", "1", "3", "0.5", "2.5", "1e300", "True", "False", "None"]
)
TIMESTAMP_LEAVES = st.sampled_from(["ts", "tu"])
ARITHMETIC = st.sampled_from(["+", "-", "*", "/", "//", "%", "**"])
COMPARISON = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
UNARY_FUNCTIONS = st.sampled_from(["abs", "sqrt", "log", "log1p", "exp", "floor", "ceil"])


@cache
def timestamps(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return TIMESTAMP_LEAVES
    inner, number = timestamps(depth - 1), numbers(depth - 1)
    return st.one_of(
        TIMESTAMP_LEAVES,
        st.builds("where({}, {}, {})".format, number, inner, inner),
        st.builds("{}({}, {})".format, st.sampled_from(["min", "max", "coalesce"]), inner, inner),
    )


def _string_test(op: str, literal: str, flipped: bool) -> str:
    return f"('{literal}' {op} s)" if flipped else f"(s {op} '{literal}')"


@cache
def numbers(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return NUMBER_LEAVES
    inner, stamp = numbers(depth - 1), timestamps(depth - 1)
    # The parser rejects a comparison with a bare None (it is always null).
    compared = inner.filter(lambda text: text != "None")
    logic = st.sampled_from([" and ", " or "])
    operand_lists = st.lists(inner, min_size=2, max_size=3)
    return st.one_of(
        NUMBER_LEAVES,
        st.builds("({} {} {})".format, inner, ARITHMETIC, inner),
        st.builds("(-{})".format, inner),
        st.builds("(not {})".format, inner),
        st.builds("({} {} {})".format, compared, COMPARISON, compared),
        st.builds("({} {} {} {} {})".format, compared, COMPARISON, compared, COMPARISON, compared),
        st.builds("({} {} {})".format, stamp, COMPARISON, stamp),
        st.builds(lambda op, items: f"({op.join(items)})", logic, operand_lists),
        st.builds("{}({})".format, UNARY_FUNCTIONS, inner),
        st.builds("{}({}, {})".format, st.sampled_from(["min", "max", "coalesce"]), inner, inner),
        st.builds("{}({}, {}, {})".format, st.sampled_from(["where", "clip"]), inner, inner, inner),
        st.builds("isnull({})".format, st.one_of(inner, stamp, st.just("s"))),
        st.builds("{}({})".format, st.sampled_from(["hour", "dayofweek"]), stamp),
        st.builds(_string_test, st.sampled_from(["==", "!="]), st.sampled_from(STRING_LITERALS),
                  st.booleans()),
    )


EDGE_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1e-300, 1e300, 709.0, 710.0, 2.0**53,
               math.inf, -math.inf]
EDGE_TIMESTAMPS = [0, -1, 1, HOUR_US - 1, HOUR_US, DAY_US - 1, DAY_US, -DAY_US,
                   1_710_028_800_000_000, -2_208_988_800_000_000]  # 2024-03-10, 1900-01-01
NULL = st.none()
ROWS = st.fixed_dictionaries(
    {
        "f": st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(-1e6, 1e6), NULL),
        "g": st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(-100, 100), NULL),
        "i": st.one_of(st.integers(-5, 5), st.integers(-(10**12), 10**12), NULL),
        "b": st.one_of(st.booleans(), NULL),
        "s": st.one_of(st.sampled_from(DICTIONARY), NULL),
        "ts": st.one_of(st.sampled_from(EDGE_TIMESTAMPS), st.integers(-(4 * 10**15), 4 * 10**15),
                        NULL),
        "tu": st.one_of(st.sampled_from(EDGE_TIMESTAMPS), st.integers(0, 4 * 10**15), NULL),
        "v.x": st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(-1e3, 1e3), NULL),
    }
)


def typed(text: str) -> Expr:
    expr = parse_expression(text)
    infer_type(expr, TYPES)  # generated expressions are well-typed by construction
    return expr


# ---------------------------------------------------------------------------------------
# Property tests.


# Each example compiles one kernel (a few seconds), so shrinking, which would compile one
# per attempt, is off; the failure message names the expression and the row instead.
@settings(
    max_examples=10,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    texts=st.lists(st.one_of(numbers(3), st.just("s")), min_size=30, max_size=40),
    rows=st.lists(ROWS, min_size=20, max_size=30),
)
def test_random_expressions_match_the_reference(texts: list[str], rows: list[dict]) -> None:
    exprs = [typed(text) for text in texts]
    assert_matches_reference(exprs, rows, run(exprs, rows))


# Expressions that pin down each rule; compiled once, then run on many random rows.
RULES = [
    "f + g", "f - g", "f * g", "f / g", "f // g", "f % g", "f ** g", "-f", "f ** 0", "1 ** f",
    "f == g", "f != g", "f < g", "f <= g", "f > g", "f >= g", "f < g <= v.x",
    "b and f", "b or f", "not b", "b and f and g", "b or f or g", "f > 0 and g > 0",
    "isnull(f) or f > 1", "where(b, f, g)", "where(f, 1, 0)",
    "abs(f)", "sqrt(f)", "log(f)", "log1p(f)", "exp(f)", "floor(f)", "ceil(f)",
    "clip(f, -1, 1)", "clip(f, g, v.x)", "min(f, g)", "max(f, g)", "isnull(f)", "isnull(s)",
    "isnull(ts)", "coalesce(f, g)", "coalesce(f, 0)", "hour(ts)", "dayofweek(ts)",
    "hour(min(ts, tu))", "ts < tu", "ts == tu", "s == 'a'", "s != 'c'", "'zz' == s",
    "s != 'zz'", "s", "i // 2", "i % 3", "b + b", "None", "True", "1e400", "f + None",
    "(f + g) * (f + g) - sqrt(abs(f + g))",
]


@pytest.fixture(scope="module")
def rules_kernel() -> tuple[list[Expr], Callable]:
    exprs = [typed(text) for text in RULES]
    return exprs, compile_kernel(exprs)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(ROWS, min_size=1, max_size=20))
def test_each_rule_matches_the_reference(rules_kernel, rows: list[dict]) -> None:
    exprs, kernel = rules_kernel
    assert_matches_reference(exprs, rows, run(exprs, rows, kernel))


# ---------------------------------------------------------------------------------------
# The documented semantics, case by case (the reference is the oracle elsewhere, so
# here the expected values are written out).

NULL_ROW = {"f": None, "g": None, "i": None, "b": None, "s": None, "ts": None, "tu": None,
            "v.x": None}


@pytest.mark.parametrize(
    ("text", "row", "expected"),
    [
        ("f / g", {"f": 1.0, "g": 0.0}, None),
        ("f / g", {"f": 1.0, "g": -0.0}, None),
        ("f // g", {"f": 7.0, "g": 0.0}, None),
        ("f % g", {"f": 7.0, "g": 0.0}, None),
        ("f // g", {"f": -7.0, "g": 2.0}, -4.0),
        ("f % g", {"f": -7.0, "g": 2.0}, 1.0),
        ("f ** g", {"f": 0.0, "g": -1.0}, None),
        ("f ** g", {"f": -8.0, "g": 0.5}, None),
        ("f ** g", {"f": -2.0, "g": 3.0}, -8.0),
        ("f ** g", {"f": 1.0, "g": None}, None),
        ("f ** g", {"f": None, "g": 0.0}, None),
        ("f - g", {"f": math.inf, "g": math.inf}, None),
        ("sqrt(f)", {"f": -1.0}, None),
        ("log(f)", {"f": 0.0}, None),
        ("log1p(f)", {"f": -1.0}, None),
        ("exp(f)", {"f": 1000.0}, math.inf),
        ("floor(f)", {"f": -2.5}, -3.0),
        ("ceil(f)", {"f": -2.5}, -2.0),
        ("f < g", {"f": None, "g": 1.0}, None),
        ("b and f", {"b": False, "f": None}, 0.0),
        ("b and f", {"b": True, "f": None}, None),
        ("b or f", {"b": True, "f": None}, 1.0),
        ("b or f", {"b": False, "f": None}, None),
        ("not b", {"b": None}, None),
        ("where(b, f, g)", {"b": None, "f": 1.0, "g": 2.0}, None),
        ("where(f, 1, 2)", {"f": 0.0}, 2.0),
        ("where(f, 1, 2)", {"f": -0.5}, 1.0),
        ("isnull(f)", {"f": None}, 1.0),
        ("isnull(s)", {"s": "a"}, 0.0),
        ("coalesce(f, g)", {"f": None, "g": 2.0}, 2.0),
        ("coalesce(f, g)", {"f": None, "g": None}, None),
        ("min(f, g)", {"f": None, "g": 2.0}, None),
        ("clip(f, 0, 10)", {"f": 12.0}, 10.0),
        ("s == 'a'", {"s": None}, None),
        ("s == 'zz'", {"s": "a"}, 0.0),
        ("s != 'zz'", {"s": "c"}, 1.0),
        ("hour(ts)", {"ts": -1}, 23.0),
        ("dayofweek(ts)", {"ts": 0}, 3.0),  # 1970-01-01 was a Thursday
        ("dayofweek(ts)", {"ts": -1}, 2.0),
        ("hour(ts)", {"ts": None}, None),
    ],
)
def test_documented_semantics_in_the_reference(text: str, row: dict, expected) -> None:
    assert evaluate(typed(text), {**NULL_ROW, **row}) == expected


def test_documented_semantics_in_the_kernel(rules_kernel) -> None:
    exprs, kernel = rules_kernel
    row = {**NULL_ROW, "f": 1.0, "g": 0.0, "b": False, "s": "a", "ts": 0}
    out = run(exprs, [row], kernel)[:, 0]
    by_text = dict(zip(RULES, out, strict=True))
    assert math.isnan(by_text["f / g"]) and math.isnan(by_text["f % g"])
    assert by_text["b and f"] == 0.0 and by_text["not b"] == 1.0
    assert by_text["s == 'a'"] == 1.0 and by_text["'zz' == s"] == 0.0
    assert by_text["dayofweek(ts)"] == 3.0 and by_text["hour(ts)"] == 0.0
    assert by_text["isnull(ts)"] == 0.0 and by_text["isnull(f)"] == 0.0


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_time_parts_agree_with_datetime(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC)
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    row = {**NULL_ROW, "ts": micros}
    assert evaluate(typed("hour(ts)"), row) == moment.hour
    assert evaluate(typed("dayofweek(ts)"), row) == moment.weekday()


# ---------------------------------------------------------------------------------------
# The emitter's output.


def test_common_subexpressions_are_computed_once_across_calls() -> None:
    emitter = ExpressionEmitter({"f": "c0", "g": "c1"}, {})
    first = emitter.value(parse_expression("sqrt(f + g) * (f + g)"))
    second = emitter.value(parse_expression("(f + g) * 2 + sqrt(f+g)"))
    again = emitter.value(parse_expression("sqrt( f + g ) * ( f + g )"))
    assert emitter.lines == [
        "_e0 = c0 + c1",
        "_e1 = expr_sqrt(_e0)",
        "_e2 = _e1 * _e0",
        "_e3 = _e0 * 2.0",
        "_e4 = _e3 + _e1",
    ]
    assert (first, second, again) == ("_e2", "_e4", "_e2")


def test_chained_comparison_reads_the_middle_operand_once() -> None:
    emitter = ExpressionEmitter({"f": "c0", "g": "c1"}, {})
    emitter.value(parse_expression("0 < f - g < 1"))
    assert emitter.lines == [
        "_e0 = c0 - c1",
        "_e1 = expr_lt(0.0, _e0)",
        "_e2 = expr_lt(_e0, 1.0)",
        "_e3 = expr_and(_e1, _e2)",
    ]


def test_columns_and_constants_as_whole_expressions() -> None:
    emitter = ExpressionEmitter({"f": "c0"}, {})
    assert emitter.value(parse_expression("f")) == "c0"
    assert emitter.value(parse_expression("None")) == "_e0"
    assert emitter.value(parse_expression("1e400")) == "_e1"
    assert emitter.value(parse_expression("True")) == "_e2"
    assert emitter.lines == ["_e0 = math.nan", "_e1 = math.inf", "_e2 = 1.0"]


def test_string_comparison_uses_the_literal_code() -> None:
    emitter = ExpressionEmitter({"s": "c0", "v.s": "c1"}, {("s", "a"): "l0", ("v.s", "b"): "l1"})
    emitter.value(parse_expression("s == 'a' or 'b' != v.s"))
    assert emitter.lines == [
        "_e0 = expr_eq(c0, l0)",
        "_e1 = expr_ne(c1, l1)",
        "_e2 = expr_or(_e0, _e1)",
    ]


def test_missing_variable_or_code_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="no kernel variable for 'g'") as caught:
        ExpressionEmitter({"f": "c0"}, {}).value(parse_expression("f + g"))
    assert caught.value.column == 4
    with pytest.raises(ExpressionError, match="no dictionary code for 'a' in 's'"):
        ExpressionEmitter({"s": "c0"}, {}).value(parse_expression("s == 'a'"))


def test_a_string_literal_alone_has_no_value() -> None:
    with pytest.raises(ExpressionError, match="string literal has no numeric value"):
        ExpressionEmitter({}, {}).value(Literal("a"))


def test_support_source_lists_plain_functions() -> None:
    source = support_source()
    defined = [line.split("(")[0][4:] for line in source.splitlines() if line.startswith("def ")]
    assert defined == list(SUPPORT_FUNCTIONS)
    assert "@" not in source and "_INTEGRAL_FROM" not in source
    decorated = support_source("@deco")
    assert decorated.count("@deco\ndef ") == len(SUPPORT_FUNCTIONS)


def test_support_functions_compile_with_the_kernel_decorator_and_cache(tmp_path: Path) -> None:
    exprs = [typed(text) for text in ("hour(ts) + f / g", "s == 'a'", "f ** g")]
    module_path = tmp_path / "expression_kernel_cached.py"
    module_path.write_text(module_source(exprs, cache_flag=True))
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("expression_kernel_cached")
        row = {**NULL_ROW, "ts": 5 * HOUR_US, "f": 3.0, "g": 2.0, "s": "a"}
        out = run(exprs, [row], module.kernel)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("expression_kernel_cached", None)
    assert out[:, 0].tolist() == [6.5, 1.0, 9.0]
    assert isinstance(module.kernel, numba.core.registry.CPUDispatcher)
    assert any(tmp_path.rglob("*.nbi")), "numba wrote no cache index"

