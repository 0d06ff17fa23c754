"""Encoding of entity key tuples to compact, unambiguous bytes.

An entity key arrives as a tuple of Python scalars, one per join-key column, for
example ``(42,)`` or ``("acme", 7)``. Online stores use its encoding in key names, so
the encoding must be injective (two different tuples never share bytes) and cheap.

Layout: the components are concatenated, each as one tag byte and a payload.

* ``b"i"`` then the integer as a zig-zag LEB128 varint: 0 -> 00, -1 -> 01, 1 -> 02,
  63 -> 7e, 64 -> 80 01. Small ids take one to three bytes, any size is allowed.
* ``b"s"`` then the UTF-8 length as an LEB128 varint, then the UTF-8 bytes.

Every component is self-delimiting and the tags tell types apart, so ``(1,)`` and
``("1",)`` and ``(1, 2)`` all differ, and decoding is unique. Booleans and floats are
rejected: ``True == 1`` in Python, and a float id would compare equal to an int one.
"""

from __future__ import annotations

import operator

from featurestore.errors import InputError

_INT_TAG = 0x69  # "i": readable in redis-cli output
_STR_TAG = 0x73  # "s"
_ONE_BYTE_VARINTS = tuple(bytes((n,)) for n in range(0x80))


def encode_entity_key(key: tuple[int | str, ...]) -> bytes:
    """Encode an entity key tuple to bytes (layout in the module docstring).

    Args:
        key: one value per join-key column; ints (Python or numpy) and strs.

    Returns:
        The encoded key; equal tuples give equal bytes, different tuples differ.

    Raises:
        InputError: the key is not a non-empty tuple of ints and strs.
    """
    if not isinstance(key, tuple) or not key:
        raise InputError(f"entity key {key!r}: expected a non-empty tuple of int or str values")
    if len(key) == 1:
        # One column is the common case; skip the join.
        return _encode_component(key[0], key)
    return b"".join([_encode_component(value, key) for value in key])


def decode_entity_key(data: bytes) -> tuple[int | str, ...]:
    """Decode bytes made by `encode_entity_key` back to the key tuple.

    Args:
        data: an encoded key.

    Returns:
        The tuple of ints and strs.

    Raises:
        ValueError: the bytes are not a valid, canonical encoding.
    """
    values: list[int | str] = []
    position = 0
    while position < len(data):
        tag = data[position]
        number, position = _read_varint(data, position + 1)
        if tag == _INT_TAG:
            values.append(number >> 1 if number & 1 == 0 else -((number + 1) >> 1))
        elif tag == _STR_TAG:
            end = position + number
            if end > len(data):
                raise ValueError(f"encoded entity key {data!r}: string runs past the end")
            values.append(data[position:end].decode("utf-8"))
            position = end
        else:
            raise ValueError(f"encoded entity key {data!r}: unknown tag byte {tag:#04x}")
    if not values:
        raise ValueError("encoded entity key is empty")
    return tuple(values)


def _encode_component(value: object, key: tuple) -> bytes:
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return b"s" + _varint(len(raw)) + raw
    if not isinstance(value, bool):
        try:
            number = operator.index(value)
        except TypeError:
            pass
        else:
            zigzag = number << 1 if number >= 0 else ((-number) << 1) - 1
            return b"i" + _varint(zigzag)
    raise InputError(
        f"entity key {key!r}: value {value!r} has type {type(value).__name__}; "
        "entity keys hold int or str values"
    )


def _varint(number: int) -> bytes:
    if number < 0x80:
        return _ONE_BYTE_VARINTS[number]
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    number = 0
    shift = 0
    while True:
        if position >= len(data):
            raise ValueError(f"encoded entity key {data!r}: truncated varint")
        byte = data[position]
        position += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            # A final zero byte after continuation bytes would be a second spelling
            # of the same number; reject it so every key has exactly one encoding.
            if byte == 0 and shift > 0:
                raise ValueError(f"encoded entity key {data!r}: overlong varint")
            return number, position
        shift += 7
