"""The offline data-access layer over DuckDB.

Reading sources and their schemas (`sources`, `schema`), Parquet copies of CSV sources
kept between calls (`source_cache`), streaming events to the kernels in hash partitions
sorted by (entity, time) (`events`, `keys`), string dictionaries (`dictionaries`),
spines (`spine`), and durable pushed events (`segments`, `push_validation`).
"""

from featurestore.offline.dictionaries import build_dictionaries, decode_codes, encode_strings
from featurestore.offline.event_query import EventQuery, plan_events
from featurestore.offline.events import (
    EventPartition,
    read_partition,
    read_partitions,
    suggest_partitions,
)
from featurestore.offline.keys import entity_ids, partition_of_keys
from featurestore.offline.push_validation import validate_rows
from featurestore.offline.schema import check_columns, describe_source
from featurestore.offline.segments import append_segment, list_segments, segment_dir
from featurestore.offline.sources import SourceSpec, count_rows, source_relation
from featurestore.offline.spine import load_spine, spine_micros

__all__ = [
    "EventPartition",
    "EventQuery",
    "SourceSpec",
    "append_segment",
    "build_dictionaries",
    "check_columns",
    "count_rows",
    "decode_codes",
    "describe_source",
    "encode_strings",
    "entity_ids",
    "list_segments",
    "load_spine",
    "partition_of_keys",
    "plan_events",
    "read_partition",
    "read_partitions",
    "segment_dir",
    "source_relation",
    "spine_micros",
    "suggest_partitions",
    "validate_rows",
]
