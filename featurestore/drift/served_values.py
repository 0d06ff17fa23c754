"""The feature values a server logged, read back for drift.

The served-value log (`featurestore.serving.served_log`, which owns the format) holds one
row per entity row of a logged lookup. Drift reads two of its columns: `logged_at_us`
(when the lookup was logged) and `values` (a JSON object: output column → the value as
served, null for missing), and gathers each output column's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow.compute as pc

from featurestore.serving.served_log import read_served_log


@dataclass(frozen=True)
class ServedValues:
    """Logged values of a time range, by output column.

    Attributes:
        rows: logged entity rows in the range.
        columns: output column → its values, one per logged row that served it (a
            lookup that did not ask for a column adds nothing to it).
    """

    rows: int
    columns: dict[str, list[Any]]


def read_served_values(directory: Path, start_us: int, end_us: int) -> ServedValues:
    """The values logged at `start_us <= logged_at_us < end_us` in the log at `directory`.

    Raises:
        InputError: a segment cannot be read as the log's format.
    """
    table = read_served_log(directory, start_us)
    table = table.filter(pc.less(table["logged_at_us"], end_us))
    columns: dict[str, list[Any]] = {}
    for text in table.column("values").to_pylist():
        for column, value in orjson.loads(text).items():
            columns.setdefault(column, []).append(value)
    return ServedValues(table.num_rows, columns)
