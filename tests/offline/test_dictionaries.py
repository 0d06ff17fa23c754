"""String dictionaries: building, encoding, extending, decoding."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from featurestore.offline.dictionaries import (
    build_dictionaries,
    decode_codes,
    encode_strings,
    extend_dictionary,
)
from featurestore.offline.segments import append_segment
from featurestore.offline.sources import SourceSpec


def test_dictionaries_are_sorted_distinct_non_null_and_include_pushes(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM (VALUES ('b', 'x', TIMESTAMP '2024-01-01'),"
        " ('ä', NULL, TIMESTAMP '2024-01-01'), ('B', 'x', TIMESTAMP '2024-01-01'),"
        " (NULL, NULL, TIMESTAMP '2024-01-01'), ('b', 'y', TIMESTAMP '2024-01-01'))"
        " t(merchant, channel, event_ts)"
    )
    append_segment(
        tmp_path, "s",
        pa.table({"merchant": ["a"], "channel": pa.array([None], pa.string()),
                  "event_ts": pa.array([0], pa.timestamp("us"))}),
    )  # fmt: skip
    spec = SourceSpec("s", None, "events", None, "event_ts", pushed_dir="pushed/s")
    dictionaries = build_dictionaries(con, spec, tmp_path, ["merchant", "channel"])
    # Code point order: upper case before lower case, 'ä' after 'z'.
    assert dictionaries == {"merchant": ["B", "a", "b", "ä"], "channel": ["x", "y"]}
    assert build_dictionaries(con, spec, tmp_path, []) == {}


def test_encode_gives_float_codes_with_nan_for_null() -> None:
    codes = encode_strings(pa.chunked_array([["b", None], ["a"]]), ["a", "b"])
    assert codes.dtype == np.float64
    np.testing.assert_array_equal(codes, [1.0, np.nan, 0.0])
    large = pa.array(["a"], pa.large_string())
    np.testing.assert_array_equal(encode_strings(large, ["a"]), [0.0])


def test_unknown_values_fail_or_extend_at_the_end() -> None:
    dictionary = ["m", "n"]
    with pytest.raises(ValueError, match=r"^2 values are not in the dictionary \(first: 'z'\)"):
        encode_strings(pa.array(["z", "m", "a"]), dictionary)
    assert dictionary == ["m", "n"]
    codes = encode_strings(pa.array(["z", "m", "a", "z", None]), dictionary, extend=True)
    assert dictionary == ["m", "n", "a", "z"]
    np.testing.assert_array_equal(codes, [3.0, 0.0, 2.0, 3.0, np.nan])
    assert extend_dictionary(dictionary, pa.array(["n", "q"])) == ["q"]
    assert dictionary == ["m", "n", "a", "z", "q"]


def test_decode_round_trips() -> None:
    dictionary = ["a", "b", "c"]
    values = pa.array(["c", None, "a", "b"])
    decoded = decode_codes(encode_strings(values, dictionary), dictionary)
    assert decoded.to_pylist() == ["c", None, "a", "b"]
    assert decode_codes(np.array([np.nan]), []).to_pylist() == [None]
