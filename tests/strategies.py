"""Hypothesis strategies shared by the test suite: events, query times, registries."""

from __future__ import annotations

from hypothesis import strategies as st

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
BASE = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds
CATEGORIES = ("a", "b", "c", "grocery")

# Times on a coarse grid hit hop and window boundaries often; a few are off-grid.
times = st.one_of(
    st.integers(0, 4 * 24 * 12).map(lambda k: BASE + k * 5 * MINUTE),
    st.integers(0, 4 * DAY).map(lambda us: BASE + us),
)

amounts = st.one_of(
    st.none(),
    st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from([0.0, 50.0, 100.0]),
)

rows = st.fixed_dictionaries({
    "amount": amounts,
    "qty": st.one_of(st.none(), st.integers(-5, 20)),
    "category": st.one_of(st.none(), st.sampled_from(CATEGORIES)),
    "flag": st.booleans(),
})

events = st.lists(st.tuples(st.integers(0, 3), times, rows), max_size=60)
queries = st.lists(st.tuples(st.integers(0, 4), times), min_size=1, max_size=30)
