"""Env-step boundaries and the replay-ratio accumulator."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loop.schedule import EventSchedule, UpdateBudget


def test_every_and_at_boundaries_merge_sorted_and_unique():
    schedule = EventSchedule(every=1000, at=[1500, 2000, 99])
    assert schedule.between(0, 2000) == [99, 1000, 1500, 2000]
    assert schedule.between(2000, 2999) == []
    assert schedule.between(2999, 3000) == [3000]


def test_between_is_half_open_so_no_boundary_fires_twice():
    schedule = EventSchedule(every=3)
    seen = [b for start in range(0, 30, 4) for b in schedule.between(start, start + 4)]
    assert seen == list(range(3, 33, 3))


def test_empty_schedule_is_falsy_and_never_due():
    assert not EventSchedule()
    assert EventSchedule().between(0, 10**9) == []


@given(st.sampled_from([0.25, 0.5, 1, 2, 1 / 3, 0.1]), st.integers(1, 7), st.integers(0, 50))
def test_updates_equal_floor_of_ratio_times_steps_for_any_chunking(ratio, chunk, starts):
    budget, total, done = UpdateBudget(ratio, starts), 0, 0
    for start in range(0, 200, chunk):
        done += budget.earn(start, start + chunk)
        total = start + chunk
    assert done == int(Fraction(ratio).limit_denominator(1000) * max(0, total - starts))


def test_fraction_of_one_third_does_not_drift_over_a_million_steps():
    budget = UpdateBudget(1 / 3, 0)
    assert sum(budget.earn(s, s + 3) for s in range(0, 3_000_000, 3)) == 1_000_000


def test_state_round_trip_keeps_the_carried_remainder():
    budget = UpdateBudget(0.25, 0)
    budget.earn(0, 3)
    restored = UpdateBudget(0.25, 0)
    restored.load_state_dict(budget.state_dict())
    assert restored.earn(3, 4) == budget.earn(3, 4) == 1


@pytest.mark.parametrize("ratio", [0.25, 2.0])
def test_no_updates_before_learning_starts(ratio):
    budget = UpdateBudget(ratio, learning_starts=100)
    assert budget.earn(0, 100) == 0
    assert budget.earn(100, 104) == int(4 * ratio)


def test_a_branch_with_another_ratio_keeps_the_carried_part_rounded_down():
    budget = UpdateBudget(0.25, 0)
    budget.earn(0, 3)  # 3/4 of an update carried
    branch = UpdateBudget(0.5, 0)
    branch.load_state_dict(budget.state_dict())
    assert branch.earn(3, 4) == 1  # 1/2 (the 3/4 on a 1/2 grid) + 1/2
    assert branch.earn(4, 5) == 0
