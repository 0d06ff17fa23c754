"""The stored online value: a state followed by its newest event time."""

from __future__ import annotations

import numpy as np

from featurestore.online.published import NEWEST_FORMAT, STATE_FORMAT
from featurestore.online.stored_states import (
    has_newest_times,
    join_value,
    later,
    newest_per_entity,
    split_value,
    split_values,
)

STATE = np.array([1.0, 0.0, 2.5]).tobytes()


def test_a_value_splits_back_into_state_and_time() -> None:
    assert split_value(join_value(STATE, 1_700_000_000_000_000)) == (STATE,
                                                                     1_700_000_000_000_000)
    assert split_value(join_value(STATE, -5)) == (STATE, -5)  # before 1970
    assert split_value(join_value(STATE, None)) == (STATE, None)
    assert len(join_value(STATE, 0)) == len(STATE) + 8


def test_values_of_older_versions_are_bare_states() -> None:
    values = [join_value(STATE, 7), None]
    assert split_values(values, framed=True) == ([STATE, None], [7, None])
    assert split_values([STATE, None], framed=False) == ([STATE, None], [None, None])
    assert has_newest_times({STATE_FORMAT: NEWEST_FORMAT})
    assert not has_newest_times({STATE_FORMAT: None})
    assert not has_newest_times({})


def test_newest_per_entity_of_sorted_events() -> None:
    entity = np.array([0, 0, 0, 1, 2, 2])
    ts = np.array([1, 5, 9, 3, 4, 4])
    assert newest_per_entity(entity, ts).tolist() == [9, 3, 4]
    assert newest_per_entity(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


def test_later_ignores_unknown_times() -> None:
    assert later(None, 3) == 3 and later(3, None) == 3 and later(2, 5) == 5
    assert later(None, None) is None
