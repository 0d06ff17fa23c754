"""Errors raised while building or compiling the transform graph."""

from __future__ import annotations


class GraphError(Exception):
    """A definition cannot be compiled.

    Attributes:
        path: where in the definitions, e.g. ("feature_views", "user_txn", "features",
            "amount_sum_7d", "expr"), so the registry layer can point at the line.
        message: what is wrong.
        column: 0-based offset inside an expression, when the problem is in one.
    """

    def __init__(self, path: tuple[str, ...], message: str, column: int | None = None) -> None:
        self.path = path
        self.message = message
        self.column = column
        super().__init__(f"{'.'.join(path)}: {message}")


class FitError(Exception):
    """A transform's statistics cannot be fitted from the data given (a numeric
    analyzer over a column with no values)."""
