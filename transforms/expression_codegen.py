"""Emit Numba-compatible Python source that evaluates expression IR on float64 scalars.

In a kernel every value is a float64: NaN is null, booleans are 1.0/0.0, string
columns hold dictionary codes and timestamps hold microseconds since the epoch (UTC).
The null rules (docs/decisions.md, "Expression semantics") live in the `expr_*` support
functions below. They are written for Numba's nopython mode (float64 in, float64 out,
`math` only; CPython would raise where Numba returns inf on overflow):
`support_source()` hands their text to the generated module, which compiles them with
`numba.njit(..., inline="always")` so a call costs nothing.

The generated module must `import math` (see SUPPORT_IMPORTS).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping

from transforms.expressions import (
    Binary,
    BoolOp,
    Call,
    Column,
    Compare,
    Expr,
    ExpressionError,
    FeatureRef,
    Literal,
    Unary,
)

SUPPORT_IMPORTS = ("import math",)

# Every float64 at or beyond 2**52 in magnitude is already an integer.
_INTEGRAL_FROM = 4503599627370496.0
# Timestamps beyond this (about year 287,000) give a null time part rather than an
# overflow when cast to int64.
_TIMESTAMP_LIMIT = 9.0e18
_HOUR_US = 3_600_000_000
_DAY_US = 86_400_000_000


def expr_div(a: float, b: float) -> float:
    """a / b; null when b is zero."""
    if b == 0.0:
        return math.nan
    return a / b


def expr_floordiv(a: float, b: float) -> float:
    """Python's floor division a // b; null when b is zero."""
    if b == 0.0:
        return math.nan
    return a // b


def expr_mod(a: float, b: float) -> float:
    """Python's a % b (sign of b); null when b is zero."""
    if b == 0.0:
        return math.nan
    return a % b


def expr_pow(a: float, b: float) -> float:
    """a ** b; null for 0 to a negative power and a negative base to a fractional one."""
    if a != a or b != b:
        # C's pow(1, NaN) is 1 and pow(NaN, 0) is 1; a null operand must give null.
        return math.nan
    if a == 0.0 and b < 0.0:
        return math.nan
    if a < 0.0 and b != expr_floor(b):
        return math.nan
    return math.pow(a, b)


def expr_eq(a: float, b: float) -> float:
    """a == b as 1.0/0.0; null when either is null."""
    if a != a or b != b:
        return math.nan
    return 1.0 if a == b else 0.0


def expr_ne(a: float, b: float) -> float:
    """a != b as 1.0/0.0; null when either is null."""
    if a != a or b != b:
        return math.nan
    return 1.0 if a != b else 0.0


def expr_lt(a: float, b: float) -> float:
    """a < b as 1.0/0.0; null when either is null."""
    if a != a or b != b:
        return math.nan
    return 1.0 if a < b else 0.0


def expr_le(a: float, b: float) -> float:
    """a <= b as 1.0/0.0; null when either is null."""
    if a != a or b != b:
        return math.nan
    return 1.0 if a <= b else 0.0


def expr_gt(a: float, b: float) -> float:
    """a > b as 1.0/0.0; null when either is null."""
    if a != a or b != b:
        return math.nan
    return 1.0 if a > b else 0.0


def expr_ge(a: float, b: float) -> float:
    """a >= b as 1.0/0.0; null when either is null."""
    if a != a or b != b:
        return math.nan
    return 1.0 if a >= b else 0.0


def expr_and(a: float, b: float) -> float:
    """Three-valued AND: false wins over null, null over true."""
    if a == 0.0 or b == 0.0:
        return 0.0
    if a != a or b != b:
        return math.nan
    return 1.0


def expr_or(a: float, b: float) -> float:
    """Three-valued OR: true wins over null, null over false."""
    # NaN != 0.0 holds, so "true" must also exclude null explicitly.
    if (a == a and a != 0.0) or (b == b and b != 0.0):
        return 1.0
    if a != a or b != b:
        return math.nan
    return 0.0


def expr_not(a: float) -> float:
    """Three-valued NOT: null stays null."""
    if a != a:
        return math.nan
    return 1.0 if a == 0.0 else 0.0


def expr_where(condition: float, a: float, b: float) -> float:
    """a where the condition is true (non-zero), b where false, null where null."""
    if condition != condition:
        return math.nan
    return a if condition != 0.0 else b


def expr_sqrt(x: float) -> float:
    """Square root; null for negative x."""
    if x < 0.0:
        return math.nan
    return math.sqrt(x)


def expr_log(x: float) -> float:
    """Natural logarithm; null for x <= 0."""
    if x <= 0.0:
        return math.nan
    return math.log(x)


def expr_log1p(x: float) -> float:
    """log(1 + x), accurate near 0; null for x <= -1."""
    if x <= -1.0:
        return math.nan
    return math.log1p(x)


def expr_exp(x: float) -> float:
    """e ** x; overflow gives inf, as any overflowing arithmetic does."""
    return math.exp(x)


def expr_floor(x: float) -> float:
    """Largest integer <= x, as a float; null, inf and huge values pass through."""
    # math.floor returns an integer, which cannot hold inf or NaN; the guard also
    # skips values that are already integral, for which floor is the identity.
    if not abs(x) < _INTEGRAL_FROM:
        return x
    return float(math.floor(x))


def expr_ceil(x: float) -> float:
    """Smallest integer >= x, as a float; null, inf and huge values pass through."""
    if not abs(x) < _INTEGRAL_FROM:
        return x
    return float(math.ceil(x))


def expr_clip(x: float, low: float, high: float) -> float:
    """min(max(x, low), high); null when any argument is null."""
    if x != x or low != low or high != high:
        return math.nan
    return min(max(x, low), high)


def expr_min(a: float, b: float) -> float:
    """The smaller of a and b; null when either is null."""
    if a != a or b != b:
        return math.nan
    return min(a, b)


def expr_max(a: float, b: float) -> float:
    """The larger of a and b; null when either is null."""
    if a != a or b != b:
        return math.nan
    return max(a, b)


def expr_isnull(x: float) -> float:
    """1.0 when x is null, else 0.0; never null."""
    return 1.0 if x != x else 0.0


def expr_coalesce(x: float, default: float) -> float:
    """x unless it is null, else the default (which may itself be null)."""
    return default if x != x else x


def expr_hour(ts: float) -> float:
    """Hour of the day, 0-23, UTC, of a timestamp in microseconds."""
    if not abs(ts) <= _TIMESTAMP_LIMIT:
        return math.nan
    # Integer floor division and modulo are exact and round towards minus infinity,
    # so instants before 1970 get the right hour too.
    return float((int(expr_floor(ts)) // _HOUR_US) % 24)


def expr_dayofweek(ts: float) -> float:
    """Day of the week, Monday=0 … Sunday=6, UTC, of a timestamp in microseconds."""
    if not abs(ts) <= _TIMESTAMP_LIMIT:
        return math.nan
    # 1970-01-01, day 0, was a Thursday (3).
    return float((int(expr_floor(ts)) // _DAY_US + 3) % 7)


_SUPPORT = (
    expr_div,
    expr_floordiv,
    expr_mod,
    expr_pow,
    expr_eq,
    expr_ne,
    expr_lt,
    expr_le,
    expr_gt,
    expr_ge,
    expr_and,
    expr_or,
    expr_not,
    expr_where,
    expr_sqrt,
    expr_log,
    expr_log1p,
    expr_exp,
    expr_floor,
    expr_ceil,
    expr_clip,
    expr_min,
    expr_max,
    expr_isnull,
    expr_coalesce,
    expr_hour,
    expr_dayofweek,
)
SUPPORT_FUNCTIONS = tuple(function.__name__ for function in _SUPPORT)

_CONSTANTS = {
    "_INTEGRAL_FROM": repr(_INTEGRAL_FROM),
    "_TIMESTAMP_LIMIT": repr(_TIMESTAMP_LIMIT),
    "_HOUR_US": repr(_HOUR_US),
    "_DAY_US": repr(_DAY_US),
}
_COMPARISONS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_ARITHMETIC = {"+": None, "-": None, "*": None, "/": "div", "//": "floordiv", "%": "mod",
               "**": "pow"}


def support_source(decorator: str = "") -> str:
    """Source text of the support functions that emitted code calls.

    Args:
        decorator: a line to put above every function, e.g.
            '@numba.njit(cache=True, error_model="numpy", inline="always")'; by default
            the functions are left undecorated, each starting with a `def` line.

    Returns:
        Top-level function definitions, separated by two blank lines. They need only
        SUPPORT_IMPORTS at module level; module constants are inlined as literals.
    """
    blocks = []
    for function in _SUPPORT:
        text = inspect.getsource(function)
        for name, value in _CONSTANTS.items():
            text = text.replace(name, value)
        blocks.append(f"{decorator}\n{text}" if decorator else text)
    return "\n\n".join(block.rstrip("\n") + "\n" for block in blocks)


class ExpressionEmitter:
    """Emit statements that evaluate expressions inside one kernel's loop body.

    Statements accumulate in `lines` (unindented; the caller indents them). Each IR
    node is computed at most once per emitter: equal sub-expressions, in one expression
    or across several `value` calls, share a variable.

    Args:
        variables: column name or "view.feature" key -> the kernel variable holding
            that float64 scalar.
        literal_codes: (column, string literal) -> the kernel variable holding that
            literal's float64 dictionary code (-1.0 when it is not in the dictionary),
            for every pair that `string_literals` reports.
        prefix: prefix of the temporary variables this emitter creates.
    """

    def __init__(
        self,
        variables: Mapping[str, str],
        literal_codes: Mapping[tuple[str, str], str],
        prefix: str = "_e",
    ) -> None:
        self.variables = dict(variables)
        self.literal_codes = dict(literal_codes)
        self.prefix = prefix
        self.lines: list[str] = []
        self._memo: dict[Expr, str] = {}

    def value(self, expr: Expr) -> str:
        """Name of a variable holding `expr`'s value once `lines` have run.

        Raises:
            ExpressionError: when the expression reads a column without a variable or
                compares with a string literal without a code.
        """
        operand = self._operand(expr)
        if operand.isidentifier():
            return operand
        # A constant at the top: give it a variable, as the contract promises.
        return self._assign(expr, operand)

    def _assign(self, expr: Expr, text: str) -> str:
        name = f"{self.prefix}{len(self._memo)}"
        self.lines.append(f"{name} = {text}")
        self._memo[expr] = name
        return name

    def _operand(self, expr: Expr) -> str:
        """A variable name or constant text for `expr`, emitting what it needs."""
        if expr in self._memo:
            return self._memo[expr]
        if isinstance(expr, Literal):
            return _constant(expr)
        if isinstance(expr, Column | FeatureRef):
            return self._variable(expr)
        return self._assign(expr, self._compute(expr))

    def _variable(self, expr: Column | FeatureRef) -> str:
        key = expr.name if isinstance(expr, Column) else expr.key
        if key not in self.variables:
            raise ExpressionError.at(expr, f"no kernel variable for '{key}'")
        return self.variables[key]

    def _compute(self, expr: Expr) -> str:
        """Right-hand side computing a compound node from its operands."""
        if isinstance(expr, Unary):
            operand = self._operand(expr.operand)
            return f"-{operand}" if expr.op == "-" else f"expr_not({operand})"
        if isinstance(expr, Compare):
            return self._comparison(expr)
        if isinstance(expr, BoolOp):
            helper = f"expr_{expr.op}"
            text = self._operand(expr.operands[0])
            # Three-valued and/or are associative, so a left fold is exact.
            for operand in expr.operands[1:]:
                text = f"{helper}({text}, {self._operand(operand)})"
            return text
        if isinstance(expr, Call):
            args = ", ".join(self._operand(arg) for arg in expr.args)
            return f"abs({args})" if expr.func == "abs" else f"expr_{expr.func}({args})"
        if isinstance(expr, Binary):
            left, right = self._operand(expr.left), self._operand(expr.right)
            helper = _ARITHMETIC[expr.op]
            if helper is None:
                return f"{left} {expr.op} {right}"
            return f"expr_{helper}({left}, {right})"
        raise TypeError(f"not an expression node: {expr!r}")

    def _comparison(self, expr: Compare) -> str:
        helper = f"expr_{_COMPARISONS[expr.op]}"
        for named, other in ((expr.left, expr.right), (expr.right, expr.left)):
            if isinstance(other, Literal) and isinstance(other.value, str):
                return f"{helper}({self._operand(named)}, {self._code(named, other)})"
        return f"{helper}({self._operand(expr.left)}, {self._operand(expr.right)})"

    def _code(self, named: Expr, literal: Literal) -> str:
        key = named.key if isinstance(named, FeatureRef) else getattr(named, "name", "")
        pair = (key, str(literal.value))
        if pair not in self.literal_codes:
            message = f"no dictionary code for {literal.value!r} in '{key}'"
            raise ExpressionError.at(literal, message)
        return self.literal_codes[pair]


def _constant(literal: Literal) -> str:
    """Source text of a literal as a float64 constant."""
    value = literal.value
    if value is None:
        return "math.nan"
    if isinstance(value, str):
        raise ExpressionError.at(literal, "a string literal has no numeric value")
    number = float(value)
    if number != number:
        return "math.nan"
    if math.isinf(number):
        return "math.inf" if number > 0 else "-math.inf"
    # repr round-trips a float exactly.
    return repr(number)
