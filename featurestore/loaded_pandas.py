"""Recognise pandas objects without importing pandas.

Importing pandas costs most of a second, and a training set read from Parquet, a
materialization or a lookup never needs it. An object can only be a pandas object if
pandas is already imported, so these checks look in `sys.modules` instead.
"""

from __future__ import annotations

import sys
from typing import Any


def is_pandas_null(value: Any) -> bool:
    """Whether `value` is pandas' `NA` or `NaT`."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def is_dataframe(value: Any) -> bool:
    """Whether `value` is a pandas DataFrame."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)
