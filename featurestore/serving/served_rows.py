"""The rows of the served-value log, encoded as lookups are answered (`served_log`).

`RowEncoder.encode` turns one answered lookup into finished rows, one line of JSON per
entity row, in the request's own thread: a few microseconds for a single-entity lookup.
The writer thread then only joins lines and hands them to Arrow's JSON reader and
Parquet writer, which do their work without the GIL. Doing the encoding in the writer
instead, or building Arrow columns from Python objects there, holds the GIL between
requests and delays the ones that arrive meanwhile (measured: p99 1.1x to 1.3x of
logging off, `benchmarks/online.py --served-log`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

if TYPE_CHECKING:
    from featurestore.serving.lookup_answer import LookupAnswer

SCHEMA = pa.schema([
    ("logged_at_us", pa.int64()),
    ("at_us", pa.int64()),
    ("registry_version", pa.string()),
    ("state_version", pa.string()),
    ("request", pa.string()),
    ("entity", pa.string()),
    ("values", pa.string()),
    ("request_fields", pa.string()),
])
"""The segment's columns (the log's format: see `served_log`)."""

_READ_OPTIONS = pa_json.ReadOptions(use_threads=False)  # the server's cores are for requests
_PARSE_OPTIONS = pa_json.ParseOptions(explicit_schema=SCHEMA,
                                      unexpected_field_behavior="error")


class ServedRows:
    """Encoded rows (lines of JSON) waiting to be written as one segment.

    Attributes:
        lookups: lookups added.
        rows: rows added.
    """

    def __init__(self) -> None:
        self.lookups = 0
        self.rows = 0
        self._lines: list[bytes] = []

    def add(self, lines: Sequence[bytes]) -> None:
        """Add the rows of one lookup."""
        self.lookups += 1
        self.rows += len(lines)
        self._lines += lines

    def table(self) -> pa.Table:
        """Every row added, as a table of `SCHEMA` (parsed by Arrow, off the GIL)."""
        if not self._lines:
            return SCHEMA.empty_table()
        text = b"".join(self._lines)
        return pa_json.read_json(pa.BufferReader(text), read_options=_READ_OPTIONS,
                                 parse_options=_PARSE_OPTIONS)


class RowEncoder:
    """Encodes answered lookups into log rows; safe to call from many threads (its
    caches only ever gain entries, and a lost race computes the same entry twice).

    Lookups are grouped by their shape (output columns, entity keys given): the split
    into key and value columns is worked out once per shape, and the text of what
    repeats (registry and state versions, the request) once per distinct value, so the
    per-row work is the JSON of the entity, of the values and of the request fields
    given (`request_fields`, left out of the line, so null, when the lookup sent none).
    """

    def __init__(self) -> None:
        self._shapes: dict[tuple, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._starts: dict[tuple, bytes] = {}

    def encode(self, logged_at: int, request: Mapping[str, object], answer: LookupAnswer,
               registry_version: int | None) -> list[bytes]:
        """The rows of one lookup (none when its features are not a dict of lists: only
        the server logs, and it answers dicts)."""
        features = answer.features
        if type(features) is not dict or not features:
            return []
        dumps = orjson.dumps
        keys, values = self._split(features, request.get("entities"))
        start = self._start(request, answer, registry_version)
        head = start + b'"logged_at_us":%d,"at_us":%s,"entity":' % (
            logged_at, b"null" if answer.at_us is None else b"%d" % answer.at_us)
        count = len(features[keys[0] if keys else values[0]])
        fields = request.get("request")
        if type(fields) is not dict:
            fields = None
        if count == 1:  # the usual single-entity lookup: no row tuples needed
            entity = dumps(dumps({name: features[name][0] for name in keys}).decode())
            served = dumps(dumps({name: features[name][0] for name in values}).decode())
            given = {name: column[0] for name, column in fields.items()
                     if type(column) is list and len(column) == 1} if fields else None
            if given:
                return [b'%s%s,"values":%s,"request_fields":%s}\n' % (
                    head, entity, served, dumps(dumps(given).decode()))]
            return [b'%s%s,"values":%s}\n' % (head, entity, served)]
        key_rows = (zip(*(features[name] for name in keys), strict=True) if keys
                    else [()] * count)
        value_rows = (zip(*(features[name] for name in values), strict=True) if values
                      else [()] * count)
        given = _given_fields(fields, count) if fields else {}
        field_rows = ([b',"request_fields":%s' % dumps(dumps(dict(zip(given, row, strict=True)))
                                                       .decode())
                       for row in zip(*given.values(), strict=True)]
                      if given else [b""] * count)
        return [b"%s%s,\"values\":%s%s}\n" % (
                    head, dumps(dumps(dict(zip(keys, key_row, strict=True))).decode()),
                    dumps(dumps(dict(zip(values, value_row, strict=True))).decode()), tail)
                for key_row, value_row, tail in zip(key_rows, value_rows, field_rows,
                                                    strict=True)]

    def _split(self, features: dict[str, list], entities: object
               ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The entity key columns and the value columns of an answer."""
        shape = (tuple(features), tuple(entities) if type(entities) is dict else ())
        split = self._shapes.get(shape)
        if split is None:
            given = set(shape[1])
            split = self._shapes[shape] = (
                tuple(name for name in shape[0] if name in given),
                tuple(name for name in shape[0] if name not in given))
        return split

    def _start(self, request: Mapping[str, object], answer: LookupAnswer,
               registry_version: int | None) -> bytes:
        """The start of each row's line: the registry version, state versions and
        request, which repeat from lookup to lookup."""
        # A logged lookup was answered, so its selection is strings: hashable.
        described = (registry_version, answer.state_version, answer.views, answer.fit,
                     *_asked(request))
        start = self._starts.get(described)
        if start is None:
            dumps = orjson.dumps
            states = dumps({view: answer.state_version for view in answer.views}).decode()
            start = self._starts[described] = b'{"registry_version":%s,"state_version":%s,' \
                b'"request":%s,' % (
                    dumps(None if registry_version is None else str(registry_version)),
                    dumps(states), dumps(dumps(_request(request, answer)).decode()))
        return start


def _given_fields(fields: dict[str, object], count: int) -> dict[str, list]:
    """The request fields of a lookup that hold one value per row: those the answer
    was computed from. (A field the selection does not read is not checked by the
    lookup; it is logged only when it has that shape too.)"""
    return {name: column for name, column in fields.items()
            if type(column) is list and len(column) == count}


def _asked(request: Mapping[str, object]) -> tuple:
    """What identifies a request's selection (hashable when the body is well formed)."""
    features = request.get("features")
    if type(features) is list:
        features = tuple(features)
    return features, request.get("service"), request.get("transformed")


def _request(request: Mapping[str, object], answer: LookupAnswer) -> dict[str, object]:
    """What was asked: the features, or the service (transformed or not, and the fit)."""
    features = request.get("features")
    if features is not None:
        return {"features": [features] if isinstance(features, str) else list(features)}
    return {"service": request.get("service"), "transformed": bool(request.get("transformed")),
            "fit": answer.fit}


def warm_up() -> None:
    """Run once what writing a segment runs (Arrow's JSON reader, Parquet encoding):
    pyarrow loads that code on first use, a few hundred milliseconds."""
    import pyarrow.parquet as pq

    line = orjson.dumps({name: 0 if field.type == pa.int64() else "{}"
                         for name, field in zip(SCHEMA.names, SCHEMA, strict=True)})
    rows = ServedRows()
    rows.add([line + b"\n"])
    pq.write_table(rows.table(), pa.BufferOutputStream())
