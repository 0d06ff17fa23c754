"""Entity key encoding: unique, reversible, and strict about what it accepts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurestore.errors import InputError
from featurestore.online import decode_entity_key, encode_entity_key

key_components = st.one_of(st.integers(), st.text())
entity_keys = st.lists(key_components, min_size=1, max_size=4).map(tuple)


@given(entity_keys)
def test_encoding_round_trips(key: tuple) -> None:
    assert decode_entity_key(encode_entity_key(key)) == key


@given(entity_keys, entity_keys)
def test_different_keys_encode_differently(first: tuple, second: tuple) -> None:
    # Compare types too: 1 and "1" are different keys although both print as 1.
    same = [(type(v), v) for v in first] == [(type(v), v) for v in second]
    assert (encode_entity_key(first) == encode_entity_key(second)) == same


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=3))
def test_numpy_integers_encode_like_python_integers(values: list[int]) -> None:
    assert encode_entity_key(tuple(np.int64(v) for v in values)) == encode_entity_key(tuple(values))


@pytest.mark.parametrize(
    ("key", "encoded"),
    [((0,), b"i\x00"), ((-1,), b"i\x01"), ((1,), b"i\x02"), ((64,), b"i\x80\x01"),
     (("ab",), b"s\x02ab"), ((7, "é"), b"i\x0es\x02\xc3\xa9")],
)
def test_documented_layout(key: tuple, encoded: bytes) -> None:
    assert encode_entity_key(key) == encoded


@pytest.mark.parametrize(
    ("key", "message"),
    [((), "non-empty tuple"), ([1], "non-empty tuple"), ((True,), "has type bool"),
     ((1.0,), "has type float"), ((None,), "has type NoneType"),
     ((np.float64(2),), "has type float64")],
)
def test_unsupported_keys_are_input_errors(key: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        encode_entity_key(key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"x\x00", "unknown tag"), (b"i\x80", "truncated"),
     (b"i\x80\x00", "overlong"), (b"s\x05ab", "runs past the end")],
)
def test_invalid_encodings_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_entity_key(data)
