"""Plain-Python oracle for the expression language (docs/decisions.md, "Expression
semantics").

Slow and literal on purpose: None is null, string columns hold real strings, and each
rule is spelled out case by case. Nothing here is shared with the code generator, so
property tests comparing the two check the semantics rather than one implementation
against itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from transforms.expressions import (
    Binary,
    BoolOp,
    Call,
    Column,
    Compare,
    Expr,
    FeatureRef,
    Literal,
    Unary,
)

Value = float | str | None
Number = float | None

HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
TIMESTAMP_LIMIT = 9.0e18


def evaluate(expr: Expr, row: Mapping[str, object]) -> Value:
    """The value of `expr` on one row.

    Args:
        expr: a parsed, type-checked expression.
        row: column name or "view.feature" -> value: a number (int, float, bool;
            timestamps as microseconds since the epoch), a string, or None / NaN for null.

    Returns:
        A float, None for null, or a string when the expression is a bare string column.
    """
    if isinstance(expr, Literal):
        return _number(expr.value)
    if isinstance(expr, Column):
        return _number(row[expr.name])
    if isinstance(expr, FeatureRef):
        return _number(row[expr.key])
    if isinstance(expr, Unary):
        return _unary(expr.op, evaluate(expr.operand, row))
    if isinstance(expr, Binary):
        return _binary(expr.op, evaluate(expr.left, row), evaluate(expr.right, row))
    if isinstance(expr, Compare):
        return _compare(expr.op, evaluate(expr.left, row), evaluate(expr.right, row))
    if isinstance(expr, BoolOp):
        return _logic(expr.op, [evaluate(operand, row) for operand in expr.operands])
    if isinstance(expr, Call):
        return _FUNCTIONS[expr.func](*[evaluate(arg, row) for arg in expr.args])
    raise TypeError(f"not an expression node: {expr!r}")


def _number(value: object) -> Value:
    """A row value or literal as a float (strings stay strings); NaN becomes None."""
    if value is None or isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _null_if_nan(value: float) -> Number:
    return None if math.isnan(value) else value


def _unary(op: str, value: Value) -> Value:
    if value is None:
        return None
    if op == "-":
        return -float(value)
    return 1.0 if value == 0.0 else 0.0


def _binary(op: str, left: Value, right: Value) -> Value:
    if left is None or right is None:
        return None
    a, b = float(left), float(right)
    if op == "+":
        return _null_if_nan(a + b)
    if op == "-":
        return _null_if_nan(a - b)
    if op == "*":
        return _null_if_nan(a * b)
    if op == "**":
        return _power(a, b)
    if b == 0.0:
        return None  # division and modulo by zero
    if op == "/":
        return _null_if_nan(a / b)
    if op == "//":
        return _null_if_nan(a // b)
    return _null_if_nan(a % b)


def _power(a: float, b: float) -> Number:
    if a == 0.0 and b < 0.0:
        return None
    if a < 0.0 and not (math.isinf(b) or b == math.floor(b)):
        return None  # would be a complex number
    try:
        return _null_if_nan(a**b)
    except OverflowError:
        odd = math.isfinite(b) and b % 2.0 == 1.0
        return -math.inf if a < 0.0 and odd else math.inf


def _compare(op: str, left: Value, right: Value) -> Value:
    if left is None or right is None:
        return None
    if isinstance(left, str) or isinstance(right, str):
        # A string column against a string literal: type inference allows == and != only.
        equal = left == right
        return 1.0 if equal == (op == "==") else 0.0
    outcome = {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]
    return 1.0 if outcome else 0.0


def _logic(op: str, values: list[Value]) -> Value:
    """SQL's three-valued logic: false decides AND, true decides OR, else null wins."""
    truths = [None if value is None else value != 0.0 for value in values]
    deciding = op == "or"  # the truth value that settles the result on its own
    if deciding in truths:
        return 1.0 if deciding else 0.0
    if None in truths:
        return None
    return 0.0 if deciding else 1.0


def _where(condition: Number, a: Number, b: Number) -> Number:
    if condition is None:
        return None
    return a if condition != 0.0 else b


def _abs(x: Number) -> Number:
    return None if x is None else abs(x)


def _sqrt(x: Number) -> Number:
    if x is None or x < 0.0:
        return None
    return math.sqrt(x)


def _log(x: Number) -> Number:
    if x is None or x <= 0.0:
        return None
    return math.log(x)


def _log1p(x: Number) -> Number:
    if x is None or x <= -1.0:
        return None
    return math.log1p(x)


def _exp(x: Number) -> Number:
    if x is None:
        return None
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _rounded(function: Callable[[float], int]) -> Callable[[Number], Number]:
    def rounded(x: Number) -> Number:
        if x is None or math.isinf(x):
            return x
        return float(function(x))

    return rounded


def _clip(x: Number, low: Number, high: Number) -> Number:
    if x is None or low is None or high is None:
        return None
    return min(max(x, low), high)


def _smaller(a: Number, b: Number) -> Number:
    if a is None or b is None:
        return None
    return min(a, b)


def _larger(a: Number, b: Number) -> Number:
    if a is None or b is None:
        return None
    return max(a, b)


def _isnull(x: Value) -> Value:
    return 1.0 if x is None else 0.0


def _coalesce(x: Number, default: Number) -> Number:
    return default if x is None else x


def _time_part(unit: int, offset: int, modulus: int) -> Callable[[Number], Number]:
    def part(ts: Number) -> Number:
        if ts is None or not abs(ts) <= TIMESTAMP_LIMIT:
            return None
        # Python's // and % on integers floor, so times before 1970 work too.
        return float((math.floor(ts) // unit + offset) % modulus)

    return part


def _lower(text: Value) -> Value:
    return None if text is None else str(text).lower()


def _length(text: Value) -> Value:
    return None if text is None else float(len(str(text)))


def _startswith(text: Value, prefix: Value) -> Value:
    if text is None:
        return None
    return 1.0 if str(text).startswith(str(prefix)) else 0.0


_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "where": _where,
    "abs": _abs,
    "sqrt": _sqrt,
    "log": _log,
    "log1p": _log1p,
    "exp": _exp,
    "floor": _rounded(math.floor),
    "ceil": _rounded(math.ceil),
    "clip": _clip,
    "min": _smaller,
    "max": _larger,
    "isnull": _isnull,
    "coalesce": _coalesce,
    "hour": _time_part(HOUR_US, 0, 24),
    # Day 0, 1970-01-01, was a Thursday: Monday=0 puts it at 3.
    "dayofweek": _time_part(DAY_US, 3, 7),
    # String request fields: a null string gives null, as any null operand does.
    "lower": _lower,
    "length": _length,
    "startswith": _startswith,
}
