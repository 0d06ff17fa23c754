"""How fresh each served feature view is, as Prometheus gauges computed when scraped.

    featurestore_view_materialization_age_seconds{view}
        now minus the end of the view's last materialization in the served version:
        events before it are in the online states (the age /health reports).
    featurestore_view_newest_push_age_seconds{view}
        now minus the event time of the newest event ever pushed to the view's source
        (by any process: HTTP, SDK or CLI). Negative when events are pushed with times
        ahead of the clock.

Both are read at scrape time, in the process answering the scrape, from what every
process shares: the online store's published metadata (one read) and the pushed
segments on disk. So they are right with any number of workers, and no worker has to
keep a gauge up to date. A view whose source never had a push, or that is not
materialized, has no sample of that gauge; while the online store cannot be reached the
materialization ages are left out (the request metrics count the 503s).

Segments are never rewritten (`offline.segments`), so each one's newest event time is
read once (its timestamp column only) and kept; a scrape then lists each pushed
source's folder and reads only the segments it has not seen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prometheus_client.core import GaugeMetricFamily, Metric

from featurestore.errors import OnlineStoreUnavailable
from featurestore.offline.segments import list_segments, segment_dir
from featurestore.serving.deployment import Deployment
from featurestore.serving.status import freshness
from featurestore.times import now_micros

_log = logging.getLogger("featurestore.serving")


class SegmentTimes:
    """The newest event time of each source's pushed segments, read once per segment.

    Args:
        offline_dir: the folder of the offline DuckDB file (segments live under it).
    """

    def __init__(self, offline_dir: Path) -> None:
        self._offline_dir = offline_dir
        self._newest: dict[Path, int | None] = {}  # segment → newest event, µs (None: empty)
        self._lock = threading.Lock()  # two scrapes at once share the cache

    def newest_us(self, source: str, timestamp: str) -> int | None:
        """The newest event time pushed to `source`, microseconds UTC (None: no push)."""
        newest: int | None = None
        for segment in list_segments(segment_dir(self._offline_dir, source)):
            with self._lock:
                known = segment in self._newest
                value = self._newest.get(segment)
            if not known:
                value = _segment_newest(segment, timestamp)
                with self._lock:
                    self._newest[segment] = value
            if value is not None and (newest is None or value > newest):
                newest = value
        return newest


def _segment_newest(segment: Path, timestamp: str) -> int | None:
    """The newest event time in one segment (None: no rows, or unreadable)."""
    try:
        column = pq.read_table(segment, columns=[timestamp]).column(timestamp)
    except (OSError, KeyError, pa.ArrowException) as error:
        # A damaged segment fails materializations loudly; the metric skips it.
        _log.warning("cannot read pushed segment %s: %s", segment, error)
        return None
    newest = pc.max(pc.cast(column, pa.int64())).as_py()
    return None if newest is None else int(newest)


class FreshnessCollector:
    """A prometheus_client collector of the two freshness gauges of served views.

    Args:
        deployment: what the server serves (its current version is read per scrape).
    """

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self._segments = SegmentTimes(deployment.current.context.offline_path.parent)

    def describe(self) -> Iterable[Metric]:
        """No families in advance: registering must not read the online store."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """The gauges, computed now."""
        served = self._deployment.current
        registry = served.context.registry
        materialized = GaugeMetricFamily(
            "featurestore_view_materialization_age_seconds",
            "Seconds since the end of the view's last materialization (served version)",
            labels=["view"])
        try:
            views = freshness(served)[1]
        except OnlineStoreUnavailable:
            views = {}
        for view, report in views.items():
            if report["age_seconds"] is not None:
                materialized.add_metric([view], report["age_seconds"])
        yield materialized
        pushed = GaugeMetricFamily(
            "featurestore_view_newest_push_age_seconds",
            "Seconds since the event time of the newest event pushed to the view's source",
            labels=["view"])
        now = now_micros()
        newest_by_source: dict[str, int | None] = {}  # views of one source: one listing
        for name, view in registry.feature_views.items():
            source = registry.sources.get(view.source)
            if source is None:
                continue
            if view.source not in newest_by_source:
                newest_by_source[view.source] = self._segments.newest_us(view.source,
                                                                         source.timestamp)
            newest = newest_by_source[view.source]
            if newest is not None:
                pushed.add_metric([name], (now - newest) / 1e6)
        yield pushed
