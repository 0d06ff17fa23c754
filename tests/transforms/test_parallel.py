"""Splitting kernel work across threads: the cuts, and values equal to one thread's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.transforms.demo_spec import DEMO_SPEC
from transforms import compile_graph
from transforms.parallel import MIN_QUERIES_PER_THREAD, split_queries, split_rows


def test_rows_are_split_into_ranges_that_cover_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESTORE_THREADS", "3")
    assert split_rows(10) == [(0, 10)]  # too small to be worth a thread
    ranges = split_rows(1_000_000)
    assert len(ranges) == 3
    assert ranges[0][0] == 0 and ranges[-1][1] == 1_000_000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_queries_are_cut_between_entities_with_their_events(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESTORE_THREADS", "2")
    rng = np.random.default_rng(3)
    # Uneven activity: entity 0 has most of the events, as heavy users do.
    entity = np.sort(np.r_[np.zeros(50_000, np.int64), rng.integers(1, 500, 50_000)])
    queries = np.sort(rng.integers(0, 600, 4 * MIN_QUERIES_PER_THREAD))
    ranges = split_queries(entity, queries)
    assert len(ranges) == 2
    assert ranges[0][0] == 0 and ranges[-1][1] == len(queries)
    for (q0, q1, i0, i1), (next_q0, *_) in zip(ranges, [*ranges[1:], (len(queries),)],
                                               strict=True):
        assert q1 == next_q0
        if q1 < len(queries):  # a cut never splits an entity's queries
            assert queries[q1 - 1] != queries[q1]
        for e in np.unique(queries[q0:q1]):
            events = np.flatnonzero(entity == e)
            assert all(i0 <= k < i1 for k in events)
    # The heavy entity's events count as work: the first part holds fewer queries.
    assert ranges[0][1] < len(queries) // 2


def test_values_on_two_threads_equal_one_thread_bit_for_bit(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    view = compile_graph(DEMO_SPEC, tmp_path_factory.mktemp("kernels")).views["user_txn"]
    rng = np.random.default_rng(7)
    n, q, span = 300_000, 3 * MIN_QUERIES_PER_THREAD, 30 * 86_400_000_000
    entity = rng.integers(0, 400, n)
    ts = rng.integers(0, span, n)
    order = np.lexsort((ts, entity))
    entity, ts = entity[order], ts[order]
    columns = {"amount": np.where(rng.random(n) < 0.01, np.nan, rng.exponential(50, n)),
               "merchant_category": rng.integers(0, 5, n).astype(float)}
    query_entity = rng.integers(0, 450, q)
    query_ts = rng.integers(0, span, q)
    order = np.lexsort((query_ts, query_entity))
    query_entity, query_ts = query_entity[order], query_ts[order]

    def values(threads: str) -> np.ndarray:
        monkeypatch.setenv("FEATURESTORE_THREADS", threads)
        return view.training_values(entity, ts, columns, {}, query_entity, query_ts)

    np.testing.assert_array_equal(values("2"), values("1"))
