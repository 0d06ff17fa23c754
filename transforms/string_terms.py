"""String request fields: the parts of a request expression that read text, evaluated
outside the kernels.

A kernel computes on float64 values only, so text never reaches one. A *string term* is
a smallest sub-expression whose value is a number or a truth value but which reads text:
a comparison with a string literal (`country == 'FR'`, and so each test of `country in
['FR', 'DE']`), `length(s)`, `startswith(s, 'prefix')`, or `isnull(s)`. Each term is
evaluated here, on whole columns, into a float64 column (1.0/0.0 for truth values, NaN
for null); the kernel reads that column in the term's place. Offline (spine columns) and
online (request values) call the same `evaluate_string_term` through
`CompiledRequestView`, so both paths see identical values.

Null rule: a null string makes every term that reads it null (`null == 'FR'`, `lower`,
`length`, `startswith`; and so `in`/`not in`), except `isnull`, which is never null.
Text is compared exactly (code points); `lower` is Unicode lower-casing, `length`
counts code points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.expression_types import STRING_FUNCTIONS, infer_type
from transforms.expressions import (
    Binary,
    BoolOp,
    Call,
    Column,
    Compare,
    Expr,
    Literal,
    Unary,
    children,
    unparse,
)
from transforms.spec import ColumnType


def find_string_terms(expr: Expr, names: Mapping[str, ColumnType]) -> list[Expr]:
    """The string terms of a typed expression, distinct, left to right.

    Args:
        expr: an expression that `infer_type(expr, names)` accepts.
        names: the types in scope (string request fields among them).
    """
    found: list[Expr] = []

    def visit(node: Expr) -> None:
        if _is_string_term(node, names):
            if node not in found:
                found.append(node)
            return
        for child in children(node):
            visit(child)

    visit(expr)
    return found


def _is_string_term(node: Expr, names: Mapping[str, ColumnType]) -> bool:
    if isinstance(node, Compare):
        return any(isinstance(side, Literal) and isinstance(side.value, str)
                   for side in (node.left, node.right))
    if isinstance(node, Call) and node.func in ("length", "startswith"):
        return True
    if isinstance(node, Call) and node.func == "isnull":
        return infer_type(node.args[0], names) == ColumnType.STRING
    return False


def term_name(term: Expr) -> str:
    """The kernel input that stands for a term: its text, which no field name can be."""
    return unparse(term)


def replace_terms(expr: Expr, terms: Mapping[Expr, str]) -> Expr:
    """`expr` with each term replaced by a column of the given name (spans kept)."""
    if expr in terms:
        return Column(terms[expr], span=expr.span)
    if isinstance(expr, Unary):
        return dataclasses.replace(expr, operand=replace_terms(expr.operand, terms))
    if isinstance(expr, Binary | Compare):
        return dataclasses.replace(expr, left=replace_terms(expr.left, terms),
                                   right=replace_terms(expr.right, terms))
    if isinstance(expr, BoolOp):
        return dataclasses.replace(
            expr, operands=tuple(replace_terms(item, terms) for item in expr.operands))
    if isinstance(expr, Call):
        return dataclasses.replace(
            expr, args=tuple(replace_terms(item, terms) for item in expr.args))
    return expr


def string_column(values: Any, name: str) -> pa.Array:
    """A string field's values (str or None; NaN counts as null) as an Arrow string array.

    Raises:
        ValueError: a value is neither a string nor null; the message names the field.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or \
                pa.types.is_null(values.type):
            return values.cast(pa.string())
        raise ValueError(f"string field '{name}' has values of type {values.type}")
    items = list(values)
    for row, item in enumerate(items):
        if item is None or isinstance(item, str):
            continue
        if isinstance(item, float) and item != item:
            items[row] = None
            continue
        raise ValueError(f"string field '{name}' row {row}: expected a string or null, "
                         f"got {item!r} ({type(item).__name__})")
    return pa.array(items, pa.string())


def evaluate_string_term(term: Expr, fields: Mapping[str, Any]) -> np.ndarray:
    """One term's values for every row: float64, NaN for null.

    Args:
        term: a term from `find_string_terms`.
        fields: string field → its values (a sequence, numpy object array or Arrow
            array of str/None), every field the term reads, all of one length.
    """
    if isinstance(term, Compare):
        literal, operand = ((term.left, term.right) if isinstance(term.left, Literal)
                            else (term.right, term.left))
        text = _strings(operand, fields)
        result = pc.equal(text, pa.scalar(str(literal.value)))  # type: ignore[union-attr]
        if term.op == "!=":
            result = pc.invert(result)
    elif isinstance(term, Call) and term.func == "length":
        result = pc.utf8_length(_strings(term.args[0], fields))
    elif isinstance(term, Call) and term.func == "startswith":
        prefix = term.args[1]
        result = pc.starts_with(_strings(term.args[0], fields),
                                pattern=str(prefix.value))  # type: ignore[attr-defined]
    elif isinstance(term, Call) and term.func == "isnull":
        result = pc.is_null(_strings(term.args[0], fields))
    else:
        raise TypeError(f"not a string term: {unparse(term)}")
    return _floats(result)


def _strings(expr: Expr, fields: Mapping[str, Any]) -> pa.Array:
    """A string-typed expression's values: a field, or `lower` of one."""
    if isinstance(expr, Column):
        return string_column(fields[expr.name], expr.name)
    if isinstance(expr, Call) and expr.func == "lower":
        return pc.utf8_lower(_strings(expr.args[0], fields))
    raise TypeError(f"not a string expression: {unparse(expr)} "
                    f"(string functions: {', '.join(STRING_FUNCTIONS)})")


def _floats(values: pa.Array) -> np.ndarray:
    """Booleans or integers as float64 (1.0/0.0), NaN for null; writable and contiguous."""
    floats = values.cast(pa.float64()).fill_null(np.nan)
    return np.array(floats.to_numpy(zero_copy_only=False), dtype=np.float64)
