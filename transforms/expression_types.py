"""Type inference for expression IR over the column types of a source (DESIGN §5).

Rules, in short: arithmetic, negation, logic and the math functions take numbers
(int, float, bool); a string is only ever compared, with == or !=, with a string
literal (`in [...]` is written out as such comparisons), tested with `isnull`, or, where
string functions are allowed (request views), passed to `lower` (string),
`length` (int) or `startswith` (bool, its prefix a string literal); timestamps may be
compared with timestamps, chosen between (`where`, `min`, `max`, `coalesce`) and passed
to `hour`/`dayofweek`, nothing else. A bare string column as the whole expression is
allowed: `first`/`last` return it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

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
    describe,
)
from transforms.spec import ColumnType

INT, FLOAT, BOOL = ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL
STRING, TIMESTAMP = ColumnType.STRING, ColumnType.TIMESTAMP
NUMERIC = frozenset({INT, FLOAT, BOOL})

# Operators whose result is integral when every operand is (/ and ** are always float:
# 2 / 4 and 2 ** -1 are not integers).
_INTEGRAL_OPERATORS = frozenset({"+", "-", "*", "//", "%"})
_LONE_STRING = "string literal {} can only be compared with a string column"
STRING_FUNCTIONS = ("lower", "length", "startswith")
"""Functions of strings: evaluated outside the kernels (`transforms/string_terms.py`)."""


def infer_type(
    expr: Expr, names: Mapping[str, ColumnType], string_functions: bool = True
) -> ColumnType:
    """The type of an expression's value, checking every operand on the way.

    Args:
        expr: parsed expression.
        names: type of each column name and of each "view.feature" key in scope.
        string_functions: whether STRING_FUNCTIONS may be called. Request views may;
            feature views may not (their string columns reach the kernels as
            dictionary codes, whose text a kernel never sees).

    Returns:
        The result type. Comparisons and logic give BOOL; a bare string column gives
        STRING (its dictionary codes reach the kernel).

    Raises:
        ExpressionError: for an unknown name (with a suggestion) or a type error,
            located at the offending operand.
    """
    return _Inference(names, string_functions).infer(expr)


class _Inference:
    """One pass over a tree; `infer` dispatches on the node class."""

    def __init__(self, names: Mapping[str, ColumnType], string_functions: bool = True) -> None:
        self.names = names
        self.string_functions = string_functions

    def infer(self, node: Expr) -> ColumnType:
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, Column | FeatureRef):
            return self._name(node)
        if isinstance(node, Unary):
            operand = self.numeric(node.operand, f"'{node.op}'")
            if node.op == "not":
                return BOOL
            return FLOAT if operand == FLOAT else INT
        if isinstance(node, Binary):
            left = self.numeric(node.left, f"'{node.op}'")
            right = self.numeric(node.right, f"'{node.op}'")
            integral = node.op in _INTEGRAL_OPERATORS and FLOAT not in (left, right)
            return INT if integral else FLOAT
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, BoolOp):
            for operand in node.operands:
                self.numeric(operand, f"'{node.op}'")
            return BOOL
        if isinstance(node, Call):
            return _CALLS[node.func](self, node)
        raise TypeError(f"not an expression node: {node!r}")

    def numeric(self, node: Expr, user: str) -> ColumnType:
        """Infer `node` and require a number; `user` names the operator or function."""
        kind = self.infer(node)
        if kind not in NUMERIC:
            raise ExpressionError.at(node, f"{user} needs a number, got {kind} {_quote(node)}")
        return kind

    def _literal(self, node: Literal) -> ColumnType:
        value = node.value
        if isinstance(value, str):
            raise ExpressionError.at(node, _LONE_STRING.format(describe(node)))
        if isinstance(value, bool):
            return BOOL
        if isinstance(value, int):
            return INT
        # None is a null number: it may stand wherever a number may.
        return FLOAT

    def _name(self, node: Column | FeatureRef) -> ColumnType:
        key = node.name if isinstance(node, Column) else node.key
        if key in self.names:
            return self.names[key]
        kind = "column" if isinstance(node, Column) else "feature"
        raise ExpressionError.at(node, f"unknown {kind} '{key}'{_suggestion(key, self.names)}")

    def _compare(self, node: Compare) -> ColumnType:
        for named, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(other, Literal) and isinstance(other.value, str):
                self._string_comparison(node, named, other)
                return BOOL
        left, right = self.infer(node.left), self.infer(node.right)
        for operand, kind in ((node.left, left), (node.right, right)):
            if kind == STRING:
                message = f"string {_quote(operand)} can only be compared with a string literal"
                raise ExpressionError.at(operand, message)
        if (left == TIMESTAMP) != (right == TIMESTAMP):
            message = f"cannot compare {left} {_quote(node.left)} with {right} {_quote(node.right)}"
            raise ExpressionError.at(node, message, anchor=True)
        return BOOL

    def _string_comparison(self, node: Compare, named: Expr, literal: Literal) -> None:
        computed = isinstance(named, Call) and named.func in STRING_FUNCTIONS
        if not (isinstance(named, Column | FeatureRef) or computed):
            raise ExpressionError.at(literal, _LONE_STRING.format(describe(literal)))
        kind = self.infer(named)
        if kind != STRING:
            message = f"cannot compare {kind} {_quote(named)} with string {describe(literal)}"
            raise ExpressionError.at(named, message)
        if node.op not in ("==", "!="):
            message = f"strings can only be compared with == or !=, not '{node.op}'"
            raise ExpressionError.at(node, message, anchor=True)

    def common(self, node: Call, args: tuple[Expr, ...]) -> ColumnType:
        """The type of a value chosen from `args`: all timestamps, or all numbers."""
        for arg in args:
            # Strings have no common code space: each column has its own dictionary.
            if isinstance(arg, Literal) and isinstance(arg.value, str):
                raise ExpressionError.at(arg, f"{node.func}() cannot take string {describe(arg)}")
        kinds = [self.infer(arg) for arg in args]
        for arg, kind in zip(args, kinds, strict=True):
            if kind == STRING:
                message = f"{node.func}() cannot take string {_quote(arg)}"
                raise ExpressionError.at(arg, message)
        if TIMESTAMP in kinds:
            for arg, kind in zip(args, kinds, strict=True):
                if kind != TIMESTAMP:
                    message = f"{node.func}() mixes timestamps with {kind} {_quote(arg)}"
                    raise ExpressionError.at(arg, message)
            return TIMESTAMP
        if all(kind == BOOL for kind in kinds):
            return BOOL
        return FLOAT if FLOAT in kinds else INT


def _quote(node: Expr) -> str:
    return f"'{describe(node)}'"


def _suggestion(key: str, names: Mapping[str, ColumnType]) -> str:
    match = difflib.get_close_matches(key, list(names), n=1)
    if not match:
        # A bare feature name whose view was left out: offer "view.feature".
        match = [name for name in names if name.endswith(f".{key}")][:1]
    return f"; did you mean '{match[0]}'?" if match else ""


def _where(inference: _Inference, node: Call) -> ColumnType:
    inference.numeric(node.args[0], f"{node.func}()")
    return inference.common(node, node.args[1:])


def _same_number(inference: _Inference, node: Call) -> ColumnType:
    for arg in node.args:
        inference.numeric(arg, f"{node.func}()")
    kind = inference.common(node, node.args)
    # abs(True) is 1, an int; clip of bools is still 0/1 but reads as a number.
    return INT if kind == BOOL and node.func in ("abs", "clip") else kind


def _float_math(inference: _Inference, node: Call) -> ColumnType:
    inference.numeric(node.args[0], f"{node.func}()")
    return FLOAT


def _choice(inference: _Inference, node: Call) -> ColumnType:
    return inference.common(node, node.args)


def _isnull(inference: _Inference, node: Call) -> ColumnType:
    # Any value may be tested for null, a string column included.
    inference.infer(node.args[0])
    return BOOL


def _string_function(inference: _Inference, node: Call) -> ColumnType:
    """lower(s) → string, length(s) → int, startswith(s, 'prefix') → bool."""
    if not inference.string_functions:
        message = (f"{node.func}() applies to string request fields (in request views); "
                   "a source's string columns can only be compared with string literals")
        raise ExpressionError.at(node, message)
    argument = node.args[0]
    if isinstance(argument, Literal) and isinstance(argument.value, str):
        kind = "a string literal"
    else:
        found = inference.infer(argument)
        kind = f"{found} {_quote(argument)}"
        if found == STRING:
            kind = ""
    if kind:
        raise ExpressionError.at(argument, f"{node.func}() needs a string, got {kind}")
    if node.func == "startswith":
        prefix = node.args[1]
        if not (isinstance(prefix, Literal) and isinstance(prefix.value, str)):
            message = f"startswith() needs a string literal prefix, got {_quote(prefix)}"
            raise ExpressionError.at(prefix, message)
        return BOOL
    return STRING if node.func == "lower" else INT


def _time_part(inference: _Inference, node: Call) -> ColumnType:
    argument = node.args[0]
    kind = inference.infer(argument)
    if kind != TIMESTAMP:
        message = f"{node.func}() needs a timestamp, got {kind} {_quote(argument)}"
        raise ExpressionError.at(argument, message)
    return INT


_CALLS: dict[str, Callable[[_Inference, Call], ColumnType]] = {
    "where": _where,
    "abs": _same_number,
    "sqrt": _float_math,
    "log": _float_math,
    "log1p": _float_math,
    "exp": _float_math,
    "floor": _float_math,
    "ceil": _float_math,
    "clip": _same_number,
    "min": _choice,
    "max": _choice,
    "isnull": _isnull,
    "coalesce": _choice,
    "hour": _time_part,
    "dayofweek": _time_part,
    "lower": _string_function,
    "length": _string_function,
    "startswith": _string_function,
}
