"""The expression language (DESIGN §5): parse text into an immutable, hashable IR.

Expressions use Python syntax and are parsed with `ast` against a whitelist; user text
is never evaluated. The IR is a tree of frozen dataclasses. Nodes compare and hash by
structure only (their source span is ignored), so equal sub-expressions written in
different places, or in different expressions, are one key in a memo table: that is
how common sub-expressions are shared downstream.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field

# Function name -> number of arguments, in the order DESIGN §5 lists them, then the
# string functions of request fields (`transforms/string_terms.py`).
FUNCTIONS: dict[str, int] = {
    "where": 3, "abs": 1, "sqrt": 1, "log": 1, "log1p": 1, "exp": 1, "floor": 1, "ceil": 1,
    "clip": 3, "min": 2, "max": 2, "isnull": 1, "coalesce": 2, "hour": 1, "dayofweek": 1,
    "lower": 1, "length": 1, "startswith": 2,
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
    # The parser imports the IR from this module, so it is loaded on first use.
    from transforms.expression_parser import Parser

    return Parser(text).parse()


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
