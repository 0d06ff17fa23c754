"""Parsing expression text into IR (DESIGN §5): Python syntax, read with `ast` against a
whitelist; user text is never evaluated. `expressions.parse_expression` is the entry
point; this module holds the translation from `ast` nodes and its error messages.
"""

from __future__ import annotations

import ast
import difflib

from transforms.expressions import (
    FUNCTIONS,
    Binary,
    BoolOp,
    Call,
    Column,
    Compare,
    Expr,
    ExpressionError,
    FeatureRef,
    Literal,
    Span,
    Unary,
)

_BINARY = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**",
}
_REJECTED_BINARY = {
    ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
    ast.MatMult: "@",
}
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_REJECTED_COMPARE = {ast.Is: "is", ast.IsNot: "is not"}
_MEMBERSHIP = {ast.In: "in", ast.NotIn: "not in"}
_LITERAL_LISTS = (ast.List, ast.Tuple, ast.Set)
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



class Parser:
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
            if type(op_node) in _MEMBERSHIP:
                pairs.append(self._membership(node, index, operands[index], anchor))
                operands.append(operands[index])  # a list is not a value to compare on
                continue
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
        if any(type(op_node) in _MEMBERSHIP for op_node in node.ops):
            raise self._fail(node, "'in' cannot be chained with other comparisons")
        # a < b < c means (a < b) and (b < c); b is one shared node, computed once.
        first_operator = self._operator_at(node.left)
        return BoolOp("and", tuple(pairs), span=self._span(node, first_operator))

    def _membership(self, node: ast.Compare, index: int, operand: Expr, anchor: int) -> Expr:
        """`x in [a, b]` as `x == a or x == b`; `x not in [a, b]` as `x != a and x != b`.

        Written out, membership follows the null rules of == and of and/or: a null `x`
        gives null either way.
        """
        symbol = _MEMBERSHIP[type(node.ops[index])]
        listed = node.comparators[index]
        if not isinstance(listed, _LITERAL_LISTS):
            message = f"'{symbol}' needs a list of literals, such as x {symbol} ['a', 'b']"
            raise self._fail(listed, message)
        if not listed.elts:
            raise self._fail(listed, f"'{symbol}' needs at least one value in its list")
        op, joined = ("!=", "and") if symbol == "not in" else ("==", "or")
        span = Span(self.text, self._span(node.left if index == 0 else
                                          node.comparators[index - 1]).start,
                    self._span(listed).end, anchor)
        tests = []
        for element in listed.elts:
            if _is_none(element):
                raise self._fail(element, "comparison with None is always null; use isnull(x)")
            literal = self._convert(element) if _is_literal(element) else None
            if not isinstance(literal, Literal | Unary):
                raise self._fail(element, f"'{symbol}' takes literals only (numbers, strings, "
                                          "true/false)")
            tests.append(Compare(op, operand, literal, span=span))
        if len(tests) == 1:
            return tests[0]
        return BoolOp(joined, tuple(tests), span=span)

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


def _is_literal(node: ast.AST) -> bool:
    """A constant, or a negated number constant (`-1` is a unary minus in `ast`)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
        return isinstance(node, ast.Constant) and isinstance(node.value, int | float)
    return isinstance(node, ast.Constant) and not isinstance(node.value, bytes)


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _unknown_function(name: str) -> str:
    match = difflib.get_close_matches(name, FUNCTIONS, n=1)
    if match:
        return f"unknown function '{name}'; did you mean '{match[0]}'?"
    return f"unknown function '{name}'; expected one of {', '.join(sorted(FUNCTIONS))}"


_HANDLERS = {
    ast.Constant: Parser._constant,
    ast.Name: Parser._name,
    ast.Attribute: Parser._attribute,
    ast.UnaryOp: Parser._unary,
    ast.BinOp: Parser._binary,
    ast.Compare: Parser._compare,
    ast.BoolOp: Parser._bool_op,
    ast.Call: Parser._call,
}
