"""Run a kernel on every core: split the work, one thread per part.

The kernels are compiled with `nogil=True`, so threads run them truly in parallel. Work
is split where no value depends on the split: rows of the row expressions (each row is
computed alone), and queries at entity boundaries (every value of an entity comes from
that entity's events only, computed by one thread in the usual order). Small inputs stay
on the calling thread: starting a thread costs more than they do.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

THREADS_ENV = "FEATURESTORE_THREADS"
# Below these sizes one thread does the whole job.
MIN_ROWS_PER_THREAD = 200_000
MIN_QUERIES_PER_THREAD = 20_000

_pool: ThreadPoolExecutor | None = None


def threads() -> int:
    """How many threads a kernel may use: `$FEATURESTORE_THREADS`, else the usable cores."""
    configured = os.environ.get(THREADS_ENV)
    if configured:
        return max(1, int(configured))
    return max(1, len(os.sched_getaffinity(0)))


def split_rows(n: int) -> list[tuple[int, int]]:
    """Row ranges, one per thread (a single range for small n)."""
    parts = max(1, min(threads(), n // MIN_ROWS_PER_THREAD))
    bounds = [n * k // parts for k in range(parts + 1)]
    return list(itertools.pairwise(bounds))


def split_queries(entity: np.ndarray,
                  query_entity: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Query and event ranges (q0, q1, i0, i1), one per thread, cut between entities.

    Both arrays are sorted; the events of every query in q0 .. q1 - 1 lie in i0 .. i1 - 1.
    Parts get about equal work, counted as events plus queries: an entity's tiles cost
    in proportion to its events, and users' activity is far from even.
    """
    q = len(query_entity)
    parts = max(1, min(threads(), q // MIN_QUERIES_PER_THREAD))
    if parts == 1:
        return [(0, q, 0, len(entity))] if q else [(0, 0, 0, 0)]
    # Work up to the end of each queried entity: its events and queries, cumulated.
    ends = np.flatnonzero(np.r_[query_entity[1:] != query_entity[:-1], True]) + 1
    last_events = np.searchsorted(entity, query_entity[ends - 1], side="right")
    first_event = int(np.searchsorted(entity, query_entity[0], side="left"))
    work = (last_events - first_event) + ends
    chosen = np.searchsorted(work, work[-1] * np.arange(1, parts) / parts)
    cuts = sorted({0, q, *(int(ends[k]) for k in chosen if k < len(ends))})
    ranges = []
    for q0, q1 in itertools.pairwise(cuts):
        i0 = int(np.searchsorted(entity, query_entity[q0], side="left"))
        i1 = int(np.searchsorted(entity, query_entity[q1 - 1], side="right"))
        ranges.append((q0, q1, i0, i1))
    return ranges


def run_parallel(tasks: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
    """Call each function with its arguments, in parallel threads when there are several."""
    global _pool
    if len(tasks) == 1:
        function, arguments = tasks[0]
        function(*arguments)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix="kernels")
    for future in [_pool.submit(function, *arguments) for function, arguments in tasks]:
        future.result()
