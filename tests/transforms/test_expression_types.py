"""Type inference: result types, and the errors that name the operand and its column."""

from __future__ import annotations

import pytest

from transforms.expression_types import infer_type
from transforms.expressions import Binary, Column, ExpressionError, Literal, parse_expression
from transforms.spec import ColumnType

INT, FLOAT, BOOL = ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL
STRING, TIMESTAMP = ColumnType.STRING, ColumnType.TIMESTAMP

NAMES = {
    "amount": FLOAT,
    "quantity": INT,
    "is_online": BOOL,
    "merchant_category": STRING,
    "event_ts": TIMESTAMP,
    "signup_ts": TIMESTAMP,
    "user_txn.amount_mean_30d": FLOAT,
    "user_txn.txn_count_1h": INT,
    "user_txn.last_category": STRING,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount", FLOAT),
        ("quantity", INT),
        ("merchant_category", STRING),  # first/last return the string
        ("user_txn.last_category", STRING),
        ("event_ts", TIMESTAMP),
        ("1", INT),
        ("1.5", FLOAT),
        ("True", BOOL),
        ("None", FLOAT),
        ("quantity + 1", INT),
        ("quantity * is_online", INT),
        ("is_online + is_online", INT),
        ("quantity // 2 % 3", INT),
        ("quantity / 2", FLOAT),
        ("quantity ** 2", FLOAT),
        ("amount + quantity", FLOAT),
        ("-quantity", INT),
        ("-is_online", INT),
        ("-amount", FLOAT),
        ("not amount", BOOL),
        ("amount > 500", BOOL),
        ("0 < amount <= 10", BOOL),
        ("is_online and amount or quantity", BOOL),
        ("merchant_category == 'grocery'", BOOL),
        ("'grocery' != merchant_category", BOOL),
        ("user_txn.last_category == 'fuel'", BOOL),
        ("event_ts < signup_ts", BOOL),
        ("event_ts == signup_ts", BOOL),
        ("where(is_online, quantity, 0)", INT),
        ("where(amount, quantity, 0.5)", FLOAT),
        ("where(is_online, True, False)", BOOL),
        ("where(is_online, event_ts, signup_ts)", TIMESTAMP),
        ("abs(quantity)", INT),
        ("abs(is_online)", INT),
        ("abs(amount)", FLOAT),
        ("sqrt(quantity)", FLOAT),
        ("log(amount)", FLOAT),
        ("log1p(amount)", FLOAT),
        ("exp(quantity)", FLOAT),
        ("floor(amount)", FLOAT),
        ("ceil(quantity)", FLOAT),
        ("clip(quantity, 0, 10)", INT),
        ("clip(is_online, 0, 1)", INT),
        ("clip(amount, 0, 10)", FLOAT),
        ("min(quantity, 3)", INT),
        ("max(amount, quantity)", FLOAT),
        ("max(is_online, is_online)", BOOL),
        ("min(event_ts, signup_ts)", TIMESTAMP),
        ("isnull(merchant_category)", BOOL),
        ("isnull(event_ts)", BOOL),
        ("coalesce(amount, 0)", FLOAT),
        ("coalesce(event_ts, signup_ts)", TIMESTAMP),
        ("hour(event_ts)", INT),
        ("dayofweek(max(event_ts, signup_ts))", INT),
        ("(amount - user_txn.amount_mean_30d) / (user_txn.txn_count_1h + 1e-6)", FLOAT),
    ],
)
def test_inferred_types(text: str, expected: ColumnType) -> None:
    assert infer_type(parse_expression(text), NAMES) == expected


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("amout * 2", 0, "unknown column 'amout'; did you mean 'amount'?"),
        ("1 + zzz", 4, "unknown column 'zzz'"),
        ("amount_mean_30d", 0, "unknown column 'amount_mean_30d'; did you mean "
         "'user_txn.amount_mean_30d'?"),
        ("user_txn.amount_mean_3d", 0, "unknown feature 'user_txn.amount_mean_3d'; did you mean "
         "'user_txn.amount_mean_30d'?"),
        ("amount + merchant_category", 9, "'+' needs a number, got string 'merchant_category'"),
        ("-merchant_category", 1, "'-' needs a number, got string 'merchant_category'"),
        ("not event_ts", 4, "'not' needs a number, got timestamp 'event_ts'"),
        ("event_ts - signup_ts", 0, "'-' needs a number, got timestamp 'event_ts'"),
        ("event_ts + 3600", 0, "'+' needs a number, got timestamp 'event_ts'"),
        ("is_online and event_ts", 14, "'and' needs a number, got timestamp 'event_ts'"),
        ("sqrt(merchant_category)", 5, "sqrt() needs a number, got string 'merchant_category'"),
        ("abs(event_ts)", 4, "abs() needs a number, got timestamp 'event_ts'"),
        ("hour(amount)", 5, "hour() needs a timestamp, got float 'amount'"),
        ("dayofweek(quantity + 1)", 10, "dayofweek() needs a timestamp, got int 'quantity + 1'"),
        ("event_ts < 5", 9, "cannot compare timestamp 'event_ts' with int '5'"),
        ("amount >= event_ts", 7, "cannot compare float 'amount' with timestamp 'event_ts'"),
        ("merchant_category == 3", 0,
         "string 'merchant_category' can only be compared with a string literal"),
        ("merchant_category == user_txn.last_category", 0,
         "string 'merchant_category' can only be compared with a string literal"),
        ("merchant_category < 'b'", 18, "strings can only be compared with == or !=, not '<'"),
        ("amount == 'grocery'", 0, "cannot compare float 'amount' with string 'grocery'"),
        ("'a' == 'b'", 7, "string literal 'b' can only be compared with a string column"),
        ("where(is_online, 'a', 'b')", 17, "where() cannot take string 'a'"),
        ("where(is_online, 1, 0) == 'a'", 26,
         "string literal 'a' can only be compared with a string column"),
        ("'grocery'", 0, "string literal 'grocery' can only be compared with a string column"),
        ("'grocery' + 1", 0, "string literal 'grocery' can only be compared with a string column"),
        ("merchant_category + 0", 0, "'+' needs a number, got string 'merchant_category'"),
        ("where(merchant_category, 1, 0)", 6,
         "where() needs a number, got string 'merchant_category'"),
        ("where(is_online, event_ts, 0)", 27, "where() mixes timestamps with int '0'"),
        ("min(amount, event_ts)", 4, "min() mixes timestamps with float 'amount'"),
        ("coalesce(merchant_category, 'other')", 28,
         "coalesce() cannot take string 'other'"),
        ("max(merchant_category, merchant_category)", 4,
         "max() cannot take string 'merchant_category'"),
        ("isnull('x')", 7, "string literal 'x' can only be compared with a string column"),
    ],
)
def test_type_errors_name_the_operand_and_column(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        infer_type(parse_expression(text), NAMES)
    assert (caught.value.text, caught.value.column, caught.value.message) == (text, column, message)


def test_type_error_message_in_full() -> None:
    with pytest.raises(ExpressionError) as caught:
        infer_type(parse_expression("log1p(amount) + merchant_category"), NAMES)
    assert str(caught.value) == (
        "expression 'log1p(amount) + merchant_category' at column 16: "
        "'+' needs a number, got string 'merchant_category'"
    )


def test_nodes_built_in_code_are_checked_too() -> None:
    expr = Binary("+", Column("amount"), Literal("x"))
    with pytest.raises(ExpressionError) as caught:
        infer_type(expr, NAMES)
    assert (caught.value.text, caught.value.column) == ("'x'", None)
    assert infer_type(Binary("*", Column("quantity"), Literal(2)), NAMES) == INT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lower(merchant_category)", STRING),
        ("length(merchant_category)", INT),
        ("startswith(merchant_category, 'gro')", BOOL),
        ("lower(merchant_category) == 'grocery'", BOOL),
        ("merchant_category in ['a', 'b']", BOOL),
        ("merchant_category not in ['a']", BOOL),
        ("quantity in [1, 2]", BOOL),
        ("length(lower(merchant_category)) + quantity", INT),
        ("where(startswith(merchant_category, 'x'), amount, 0.0)", FLOAT),
    ],
)
def test_string_functions_and_membership(text: str, expected: ColumnType) -> None:
    assert infer_type(parse_expression(text), NAMES) == expected


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("amount + merchant_category", 9, "'+' needs a number, got string 'merchant_category'"),
        ("lower(3)", 6, "lower() needs a string, got int '3'"),
        ("length('abc')", 7, "length() needs a string, got a string literal"),
        ("startswith(merchant_category, amount)", 30,
         "startswith() needs a string literal prefix, got 'amount'"),
        ("length(merchant_category) == 'x'", 0,
         "cannot compare int 'length(merchant_category)' with string 'x'"),
        ("merchant_category in ['a', 1]", 0,
         "string 'merchant_category' can only be compared with a string literal"),
        ("lower(merchant_category) < 'b'", 25,
         "strings can only be compared with == or !=, not '<'"),
    ],
)
def test_string_type_errors(text: str, column: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        infer_type(parse_expression(text), NAMES)
    assert (caught.value.column, caught.value.message) == (column, message)


def test_string_functions_are_refused_where_strings_are_codes() -> None:
    with pytest.raises(ExpressionError) as caught:
        infer_type(parse_expression("length(merchant_category) > 3"), NAMES,
                   string_functions=False)
    assert caught.value.column == 0
    assert caught.value.message.startswith("length() applies to string request fields")
    # Comparisons with literals (and so membership) stay: they compare dictionary codes.
    assert infer_type(parse_expression("merchant_category in ['a', 'b']"), NAMES,
                      string_functions=False) == BOOL
