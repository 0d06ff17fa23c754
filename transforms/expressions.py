"""The expression language (DESIGN §5): parse text into an immutable, hashable IR.

Expressions use Python syntax and are parsed with `ast` against a whitelist; user text
is never evaluated. The IR is a tree of frozen dataclasses. Nodes compare and hash by
structure only (their source span is ignored), so equal sub-expressions written in
different places, or in different expressions, are one key in a memo table: that is
how common sub-expressions are shared downstream.
"""

from __future__ import annotations

import ast
import difflib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field

# Function name -> number of arguments, in the order DESIGN §5 lists them.
FUNCTIONS: dict[str, int] = {
    "where": 3, "abs": 1, "sqrt": 1, "log": 1, "log1p": 1, "exp": 1, "floor": 1, "ceil": 1,
    "clip": 3, "min": 2, "max": 2, "isnull": 1, "coalesce": 2, "hour": 1, "dayofweek": 1,
}

_BINARY = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**",
}
_REJECTED_BINARY = {
    ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
    ast.MatMult: "@",
}
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_REJECTED_COMPARE = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_UNARY_NAMES = {ast.UAdd: "+", ast.Invert: "~"}

# Syntax outside the language, named the way a user would recognise it; anything else
# is named by its `ast` class.
_FORBIDDEN_SYNTAX = {
    ast.Subscript: "subscript",
    ast.Lambda: "lambda",
    ast.IfExp: "conditional expression (use where(cond, a, b))",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.Tuple: "tuple",
    ast.List: "list",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.JoinedStr: "f-string",
    ast.NamedExpr: "assignment expression",
}


@dataclass(frozen=True)
class Span:
    """Where a node came from: the whole expression text and offsets into it.

    Attributes:
        text: the full expression text as the user wrote it.
        start: 0-based offset of the node's first character.
        end: offset one past the node's last character.
        anchor: offset reported for errors about the node itself; for operators this is
            the operator symbol rather than the start of the left operand.
    """

    text: str
    start: int
    end: int
    anchor: int

    @property
    def source(self) -> str:
        """The node's own source text."""
        return self.text[self.start : self.end]


@dataclass(frozen=True)
class Expr:
    """Base class of IR nodes. `span` is excluded from equality and hashing."""

    span: Span | None = field(default=None, kw_only=True, compare=False, repr=False)


@dataclass(frozen=True, eq=False)
class Literal(Expr):
    """A constant: number, bool, string, or None (null)."""

    value: float | int | bool | str | None

    # Python says 1 == 1.0 == True; the IR must not, because they differ in type.
    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Literal)
            and type(other.value) is type(self.value)
            and other.value == self.value
        )

    def __hash__(self) -> int:
        return hash((Literal, type(self.value).__name__, self.value))


@dataclass(frozen=True)
class Column(Expr):
    """A source column or request field, by name."""

    name: str


@dataclass(frozen=True)
class FeatureRef(Expr):
    """A feature of a feature view, written `view.feature` (request views)."""

    view: str
    feature: str

    @property
    def key(self) -> str:
        """The "view.feature" string used in name and variable mappings."""
        return f"{self.view}.{self.feature}"


@dataclass(frozen=True)
class Unary(Expr):
    """Unary operator: "-" (negation) or "not"."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    """Arithmetic operator: one of + - * / // % **."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare(Expr):
    """One comparison: one of == != < <= > >=."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class BoolOp(Expr):
    """"and" / "or" over two or more operands."""

    op: str
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Call(Expr):
    """A call of one of FUNCTIONS."""

    func: str
    args: tuple[Expr, ...]


class ExpressionError(ValueError):
    """An expression is malformed, names something unknown, or is ill-typed.

    Attributes:
        text: the expression text.
        column: 0-based offset of the problem in `text` (None when the expression was
            built in code rather than parsed).
        message: what is wrong.
    """

    def __init__(self, text: str, column: int | None, message: str) -> None:
        super().__init__(text, column, message)
        self.text = text
        self.column = column
        self.message = message

    def __str__(self) -> str:
        where = "" if self.column is None else f" at column {self.column}"
        return f"expression {self.text!r}{where}: {self.message}"

    @classmethod
    def at(cls, node: Expr, message: str, *, anchor: bool = False) -> ExpressionError:
        """An error located at `node`: its start, or its operator when `anchor`."""
        if node.span is None:
            return cls(unparse(node), None, message)
        column = node.span.anchor if anchor else node.span.start
        return cls(node.span.text, column, message)


def describe(node: Expr) -> str:
    """The node's source text as written, for messages that name an operand."""
    return node.span.source if node.span is not None else unparse(node)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node, left to right."""
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary | Compare):
        return (node.left, node.right)
    if isinstance(node, BoolOp):
        return node.operands
    if isinstance(node, Call):
        return node.args
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of the tree, parents before children, left to right."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def referenced_names(expr: Expr) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Column names and (view, feature) references that an expression reads."""
    columns = frozenset(node.name for node in walk(expr) if isinstance(node, Column))
    features = frozenset(
        (node.view, node.feature) for node in walk(expr) if isinstance(node, FeatureRef)
    )
    return columns, features


def string_literals(expr: Expr) -> frozenset[tuple[str, str]]:
    """(column, literal) pairs for every comparison of a column with a string literal.

    The column is a column name or a "view.feature" key. The kernel needs the dictionary
    code of each literal, looked up before it runs.
    """
    pairs = set()
    for node in walk(expr):
        if not isinstance(node, Compare):
            continue
        for named, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(other, Literal) and isinstance(other.value, str):
                if isinstance(named, Column):
                    pairs.add((named.name, other.value))
                elif isinstance(named, FeatureRef):
                    pairs.add((named.key, other.value))
    return frozenset(pairs)


def unparse(node: Expr) -> str:
    """Source text for a node, fully parenthesised (for nodes built in code)."""
    if isinstance(node, Literal):
        return repr(node.value)
    if isinstance(node, Column):
        return node.name
    if isinstance(node, FeatureRef):
        return node.key
    if isinstance(node, Unary):
        space = " " if node.op == "not" else ""
        return f"({node.op}{space}{unparse(node.operand)})"
    if isinstance(node, Binary | Compare):
        return f"({unparse(node.left)} {node.op} {unparse(node.right)})"
    if isinstance(node, BoolOp):
        return "(" + f" {node.op} ".join(unparse(item) for item in node.operands) + ")"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(unparse(item) for item in node.args)})"
    raise TypeError(f"not an expression node: {node!r}")


def parse_expression(text: str) -> Expr:
    """Parse expression text into IR.

    Args:
        text: the expression, in the Python-syntax subset of DESIGN §5.

    Returns:
        The root IR node; every node carries its span in `text`.

    Raises:
        ExpressionError: on a syntax error or anything outside the whitelist, with
            the 0-based column of the offending part.
    """
    return _Parser(text).parse()


class _Parser:
    """Translates a Python `ast` tree into IR, rejecting everything not whitelisted."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Python rejects leading indentation; parse the stripped text and shift offsets.
        self.lead = len(text) - len(text.lstrip())
        self.body = text.strip()
        starts = [0]
        for line in self.body.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        self.line_starts = starts

    def parse(self) -> Expr:
        if not self.body:
            raise ExpressionError(self.text, 0, "expression is empty")
        try:
            tree = ast.parse(self.body, mode="eval")
        except SyntaxError as error:
            raise self._syntax_error(error) from None
        return self._convert(tree.body)

    def _syntax_error(self, error: SyntaxError) -> ExpressionError:
        if error.lineno and error.offset:
            # SyntaxError offsets are 1-based characters, unlike ast's byte offsets.
            column = self.line_starts[error.lineno - 1] + error.offset - 1 + self.lead
        else:
            column = len(self.text.rstrip())
        return ExpressionError(self.text, min(column, len(self.text)), error.msg)

    def _offset(self, lineno: int, col_offset: int) -> int:
        line_start = self.line_starts[lineno - 1]
        line = self.body[line_start:]
        # ast column offsets count UTF-8 bytes; the error contract counts characters.
        prefix = line.encode("utf-8")[:col_offset].decode("utf-8", errors="ignore")
        return self.lead + line_start + len(prefix)

    def _span(self, node: ast.AST, anchor: int | None = None) -> Span:
        start = self._offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self._offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return Span(self.text, start, end, start if anchor is None else anchor)

    def _operator_at(self, after: ast.AST) -> int:
        """Offset of the operator that follows node `after`: the first character that
        is not whitespace, a closing parenthesis, a line continuation or a comment."""
        index = self._offset(after.end_lineno, after.end_col_offset)  # type: ignore[attr-defined]
        while index < len(self.text):
            char = self.text[index]
            if char == "#":
                newline = self.text.find("\n", index)
                index = len(self.text) if newline < 0 else newline
            elif char.isspace() or char in ")\\":
                index += 1
            else:
                return index
        return index

    def _fail(self, node: ast.AST, message: str, anchor: int | None = None) -> ExpressionError:
        span = self._span(node, anchor)
        return ExpressionError(self.text, span.anchor, message)

    def _convert(self, node: ast.expr) -> Expr:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        name = _FORBIDDEN_SYNTAX.get(type(node), type(node).__name__.lower())
        raise self._fail(node, f"{name} is not allowed")

    def _constant(self, node: ast.Constant) -> Expr:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, float | str):
            return Literal(value, span=self._span(node))
        if isinstance(value, int):
            try:
                float(value)
            except OverflowError:
                raise self._fail(node, "number is too large") from None
            return Literal(value, span=self._span(node))
        raise self._fail(node, f"literal {self._span(node).source} is not allowed")

    def _name(self, node: ast.Name) -> Expr:
        return Column(node.id, span=self._span(node))

    def _attribute(self, node: ast.Attribute) -> Expr:
        if not isinstance(node.value, ast.Name):
            source = self._span(node).source
            raise self._fail(node, f"'{source}' is not allowed; only view.feature references")
        return FeatureRef(node.value.id, node.attr, span=self._span(node))

    def _unary(self, node: ast.UnaryOp) -> Expr:
        span = self._span(node)
        if isinstance(node.op, ast.USub):
            return Unary("-", self._convert(node.operand), span=span)
        if isinstance(node.op, ast.Not):
            return Unary("not", self._convert(node.operand), span=span)
        raise self._fail(node, f"operator '{_UNARY_NAMES[type(node.op)]}' is not allowed")

    def _binary(self, node: ast.BinOp) -> Expr:
        anchor = self._operator_at(node.left)
        op = _BINARY.get(type(node.op))
        if op is None:
            symbol = _REJECTED_BINARY[type(node.op)]
            raise self._fail(node, f"operator '{symbol}' is not allowed", anchor)
        left, right = self._convert(node.left), self._convert(node.right)
        return Binary(op, left, right, span=self._span(node, anchor))

    def _compare(self, node: ast.Compare) -> Expr:
        operands = [self._convert(node.left)]
        sources = [node.left, *node.comparators]
        pairs: list[Compare] = []
        for index, op_node in enumerate(node.ops):
            anchor = self._operator_at(sources[index])
            op = _COMPARE.get(type(op_node))
            if op is None:
                symbol = _REJECTED_COMPARE[type(op_node)]
                raise self._fail(node, f"operator '{symbol}' is not allowed", anchor)
            operands.append(self._convert(node.comparators[index]))
            left_node, right_node = sources[index], sources[index + 1]
            if _is_none(left_node) or _is_none(right_node):
                message = "comparison with None is always null; use isnull(x)"
                raise self._fail(node, message, anchor)
            span = Span(
                self.text,
                self._span(left_node).start,
                self._span(right_node).end,
                anchor,
            )
            pairs.append(Compare(op, operands[index], operands[index + 1], span=span))
        if len(pairs) == 1:
            return pairs[0]
        # a < b < c means (a < b) and (b < c); b is one shared node, computed once.
        first_operator = self._operator_at(node.left)
        return BoolOp("and", tuple(pairs), span=self._span(node, first_operator))

    def _bool_op(self, node: ast.BoolOp) -> Expr:
        op = "and" if isinstance(node.op, ast.And) else "or"
        operands = tuple(self._convert(value) for value in node.values)
        anchor = self._operator_at(node.values[0])
        return BoolOp(op, operands, span=self._span(node, anchor))

    def _call(self, node: ast.Call) -> Expr:
        if not isinstance(node.func, ast.Name):
            source = self._span(node.func).source
            raise self._fail(node, f"calling '{source}' is not allowed; call a function by name")
        name = node.func.id
        if name not in FUNCTIONS:
            raise self._fail(node, _unknown_function(name))
        if node.keywords:
            keyword = node.keywords[0]
            label = "**" if keyword.arg is None else f"'{keyword.arg}'"
            raise self._fail(keyword, f"keyword argument {label} is not allowed in {name}()")
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise self._fail(argument, f"starred argument is not allowed in {name}()")
        expected = FUNCTIONS[name]
        if len(node.args) != expected:
            plural = "argument" if expected == 1 else "arguments"
            message = f"{name}() takes {expected} {plural}, got {len(node.args)}"
            raise self._fail(node, message)
        args = tuple(self._convert(argument) for argument in node.args)
        return Call(name, args, span=self._span(node))


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _unknown_function(name: str) -> str:
    match = difflib.get_close_matches(name, FUNCTIONS, n=1)
    if match:
        return f"unknown function '{name}'; did you mean '{match[0]}'?"
    return f"unknown function '{name}'; expected one of {', '.join(sorted(FUNCTIONS))}"


_HANDLERS = {
    ast.Constant: _Parser._constant,
    ast.Name: _Parser._name,
    ast.Attribute: _Parser._attribute,
    ast.UnaryOp: _Parser._unary,
    ast.BinOp: _Parser._binary,
    ast.Compare: _Parser._compare,
    ast.BoolOp: _Parser._bool_op,
    ast.Call: _Parser._call,
}


# The compiler reads the whole language from this module. Type inference and code
# generation live in modules that import this one, so they are loaded on first use.
_LAZY_EXPORTS = {
    "infer_type": "transforms.expression_types",
    "ExpressionEmitter": "transforms.expression_codegen",
    "support_source": "transforms.expression_codegen",
    "SUPPORT_IMPORTS": "transforms.expression_codegen",
    "SUPPORT_FUNCTIONS": "transforms.expression_codegen",
}


def __getattr__(name: str) -> object:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
