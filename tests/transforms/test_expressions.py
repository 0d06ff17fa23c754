"""Parsing expression text into IR: what is accepted, what it becomes, what is refused."""

from __future__ import annotations

import pickle

import pytest

import transforms.expressions as expressions
from transforms.expressions import (
    Binary,
    BoolOp,
    Call,
    Column,
    Compare,
    ExpressionError,
    FeatureRef,
    Literal,
    Unary,
    parse_expression,
    referenced_names,
    string_literals,
    unparse,
    walk,
)

a, b, c = Column("a"), Column("b"), Column("c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount", Column("amount")),
        ("user_txn.amount_mean_30d", FeatureRef("user_txn", "amount_mean_30d")),
        ("1", Literal(1)),
        ("2.5", Literal(2.5)),
        ("True", Literal(True)),
        ("None", Literal(None)),
        ("'grocery'", Literal("grocery")),
        ('"grocery"', Literal("grocery")),
        ("-a", Unary("-", a)),
        ("not a", Unary("not", a)),
        ("a + b * c", Binary("+", a, Binary("*", b, c))),
        ("(a + b) * c", Binary("*", Binary("+", a, b), c)),
        ("a - b - c", Binary("-", Binary("-", a, b), c)),
        ("a ** -1", Binary("**", a, Unary("-", Literal(1)))),
        ("a / b // c % 2", Binary("%", Binary("//", Binary("/", a, b), c), Literal(2))),
        ("a != 'x'", Compare("!=", a, Literal("x"))),
        ("a < b <= c", BoolOp("and", (Compare("<", a, b), Compare("<=", b, c)))),
        ("a and b and c", BoolOp("and", (a, b, c))),
        ("a or b and not c", BoolOp("or", (a, BoolOp("and", (b, Unary("not", c)))))),
        ("where(a > 0, b, c)", Call("where", (Compare(">", a, Literal(0)), b, c))),
        ("clip(a, 0, 1)", Call("clip", (a, Literal(0), Literal(1)))),
        ("hour(ts)", Call("hour", (Column("ts"),))),
        ("coalesce(v.f, 0.0)", Call("coalesce", (FeatureRef("v", "f"), Literal(0.0)))),
        ("  a\n", a),
        ("(a +\n b)", Binary("+", a, b)),
    ],
)
def test_accepted_expressions_become_ir(text: str, expected) -> None:
    assert parse_expression(text) == expected


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("amount >> 2", 7, "operator '>>' is not allowed"),
        ("a & b", 2, "operator '&' is not allowed"),
        ("(a) @ b", 4, "operator '@' is not allowed"),
        ("~a", 0, "operator '~' is not allowed"),
        ("+a", 0, "operator '+' is not allowed"),
        ("a in b", 5, "'in' needs a list of literals, such as x in ['a', 'b']"),
        ("a not in []", 9, "'not in' needs at least one value in its list"),
        ("a in ['x', y]", 11, "'in' takes literals only (numbers, strings, true/false)"),
        ("a in [None]", 6, "comparison with None is always null; use isnull(x)"),
        ("a < b in [1]", 0, "'in' cannot be chained with other comparisons"),
        ("lower()", 0, "lower() takes 1 argument, got 0"),
        ("startswith(a)", 0, "startswith() takes 2 arguments, got 1"),
        ("a < b is not c", 6, "operator 'is not' is not allowed"),
        ("x == None", 2, "comparison with None is always null; use isnull(x)"),
        ("a.b.c", 0, "'a.b.c' is not allowed; only view.feature references"),
        ("f(a).b", 0, "'f(a).b' is not allowed; only view.feature references"),
        ("a[0]", 0, "subscript is not allowed"),
        ("lambda: 1", 0, "lambda is not allowed"),
        ("[x for x in a]", 0, "list comprehension is not allowed"),
        ("a if b else c", 0, "conditional expression (use where(cond, a, b)) is not allowed"),
        ("(a, b)", 0, "tuple is not allowed"),
        ("f'{a}'", 0, "f-string is not allowed"),
        ("1j", 0, "literal 1j is not allowed"),
        ("b'x'", 0, "literal b'x' is not allowed"),
        ("1" + "0" * 400, 0, "number is too large"),
        ("sqr(a)", 0, "unknown function 'sqr'; did you mean 'sqrt'?"),
        ("a + logp1(b)", 4, "unknown function 'logp1'; did you mean 'log1p'?"),
        ("math.sqrt(a)", 0, "calling 'math.sqrt' is not allowed; call a function by name"),
        ("sqrt(a, b)", 0, "sqrt() takes 1 argument, got 2"),
        ("clip(a, 1)", 0, "clip() takes 3 arguments, got 2"),
        ("where()", 0, "where() takes 3 arguments, got 0"),
        ("min(a, b=1)", 7, "keyword argument 'b' is not allowed in min()"),
        ("abs(**a)", 4, "keyword argument ** is not allowed in abs()"),
        ("abs(*a)", 4, "starred argument is not allowed in abs()"),
        ("a +", 3, "invalid syntax"),
        ("a b", 2, "invalid syntax"),
        ("(a + b", 0, "'(' was never closed"),
        ("a := 1", 2, "invalid syntax"),
        ("", 0, "expression is empty"),
        ("   ", 0, "expression is empty"),
    ],
)
def test_rejected_expressions_say_what_and_where(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert (caught.value.column, caught.value.message) == (column, message)
    assert caught.value.text == text


def test_unknown_function_without_a_close_name_lists_the_functions() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("frobnicate(a)")
    assert caught.value.message == (
        "unknown function 'frobnicate'; expected one of abs, ceil, clip, coalesce, dayofweek,"
        " exp, floor, hour, isnull, length, log, log1p, lower, max, min, sqrt, startswith,"
        " where"
    )


def test_error_text_names_expression_and_column() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("amount >> 2")
    assert str(caught.value) == "expression 'amount >> 2' at column 7: operator '>>' is not allowed"
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.column) == (str(caught.value), 7)


def test_columns_count_characters_not_bytes() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("'éé' == c >> 2")
    assert caught.value.column == 10
    assert parse_expression("'é' == c").right.span.start == 7  # type: ignore[attr-defined]


def test_columns_count_leading_whitespace_and_earlier_lines() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("  amount >> 2")
    assert caught.value.column == 9
    with pytest.raises(ExpressionError) as caught:
        parse_expression("(a  # why\n + b) >> 2")
    assert caught.value.column == 16
    with pytest.raises(ExpressionError) as caught:
        parse_expression("\n  (a +\n   b[1])")
    assert caught.value.column == 11


def test_spans_point_at_operators_and_operands() -> None:
    expr = parse_expression("(a + b) * sqrt(c)")
    assert (expr.span.start, expr.span.anchor, expr.span.end) == (0, 8, 17)
    assert expr.left.span.source == "a + b"  # type: ignore[attr-defined]
    assert expr.right.span.source == "sqrt(c)"  # type: ignore[attr-defined]
    chain = parse_expression("a < b >= c")
    assert [pair.span.anchor for pair in chain.operands] == [2, 6]  # type: ignore[attr-defined]
    assert [pair.span.source for pair in chain.operands] == ["a < b", "b >= c"]  # type: ignore[attr-defined]


def test_equality_and_hash_ignore_where_a_node_was_written() -> None:
    first, second = parse_expression("log1p(amount)"), parse_expression("  log1p( amount )")
    assert first == second and hash(first) == hash(second)
    assert len({first, second, parse_expression("log1p(amount) + 0")}) == 2


def test_literals_of_different_types_are_different_nodes() -> None:
    literals = [Literal(1), Literal(1.0), Literal(True), Literal("1")]
    assert len(set(literals)) == 4
    assert Literal(0) != Literal(False) and Literal(2) == Literal(2)


def test_ir_is_immutable() -> None:
    expr = parse_expression("a + 1")
    with pytest.raises(AttributeError):
        expr.op = "-"  # type: ignore[misc]


def test_referenced_names() -> None:
    expr = parse_expression("(amount_now - user_txn.mean) / (user_txn.std + amount_now)")
    assert referenced_names(expr) == (
        frozenset({"amount_now"}),
        frozenset({("user_txn", "mean"), ("user_txn", "std")}),
    )
    assert referenced_names(parse_expression("1 + 2")) == (frozenset(), frozenset())


def test_string_literals_pairs_columns_and_features_with_literals() -> None:
    expr = parse_expression("cat == 'grocery' or 'fuel' != cat or v.last == 'x' or cat == 'x'")
    assert string_literals(expr) == frozenset(
        {("cat", "grocery"), ("cat", "fuel"), ("v.last", "x"), ("cat", "x")}
    )
    assert string_literals(parse_expression("amount > 5")) == frozenset()


def test_walk_visits_parents_before_children_left_to_right() -> None:
    expr = parse_expression("a + sqrt(b)")
    assert [unparse(node) for node in walk(expr)] == ["(a + sqrt(b))", "a", "sqrt(b)", "b"]


@pytest.mark.parametrize(
    "text",
    ["a + b * -c", "not (a < b <= c)", "where(a, 'x' == s, None)", "v.f ** 2 // 3 % 1.5"],
)
def test_unparse_round_trips(text: str) -> None:
    expr = parse_expression(text)
    assert parse_expression(unparse(expr)) == expr


def test_errors_on_nodes_built_in_code_have_no_column() -> None:
    error = ExpressionError.at(Binary("+", a, Literal("x")), "bad")
    assert (error.text, error.column) == ("(a + 'x')", None)
    assert str(error) == "expression \"(a + 'x')\": bad"


def test_type_inference_and_emitter_are_importable_from_here() -> None:
    from transforms.expression_codegen import ExpressionEmitter, support_source
    from transforms.expression_types import infer_type

    assert expressions.infer_type is infer_type
    assert expressions.ExpressionEmitter is ExpressionEmitter
    assert expressions.support_source is support_source
    with pytest.raises(AttributeError):
        expressions.no_such_name  # noqa: B018


def test_membership_is_written_out_as_comparisons() -> None:
    assert parse_expression("c in ['a', 'b']") == BoolOp(
        "or", (Compare("==", Column("c"), Literal("a")), Compare("==", Column("c"), Literal("b"))))
    assert parse_expression("n not in [1, -2]") == BoolOp(
        "and", (Compare("!=", Column("n"), Literal(1)),
                Compare("!=", Column("n"), Unary("-", Literal(2)))))
    assert parse_expression("c in ('a',)") == Compare("==", Column("c"), Literal("a"))
    spanned = parse_expression("x + (c in ['a', 'b'])")
    assert spanned.right.span.source == "c in ['a', 'b']"  # type: ignore[attr-defined]


def test_string_functions_parse_as_calls() -> None:
    assert parse_expression("startswith(lower(c), 'fr')") == Call(
        "startswith", (Call("lower", (Column("c"),)), Literal("fr")))
    assert parse_expression("length(c)") == Call("length", (Column("c"),))
