"""Env-step arithmetic: when events fall due and how many updates a span of env steps earns."""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction


class EventSchedule:
    """Env steps at which an event happens: every `every` env steps and/or at listed steps.

    Boundaries are exact env-step counts, independent of how many env steps one vector step adds;
    the loop splits a vector step's learner work at each boundary so that an event at step b always
    follows exactly the updates earned by the first b env steps.
    """

    def __init__(self, every: int | None = None, at: Iterable[int] = ()):
        self.every = int(every) if every else None
        self.at = sorted({int(s) for s in at})

    def between(self, start: int, stop: int) -> list[int]:
        """Boundaries b with start < b <= stop, ascending."""
        due = [b for b in self.at if start < b <= stop]
        if self.every:
            first = (start // self.every + 1) * self.every
            if first <= stop:  # the loop asks every vector step; almost always nothing falls due
                return sorted({*due, *range(first, stop + 1, self.every)})
        return due

    def __bool__(self) -> bool:
        return bool(self.every or self.at)


class UpdateBudget:
    """Gradient updates earned per env step (`replay_ratio`), fractional ratios carried exactly.

    A ratio of 0.25 gives one update every 4 env steps; 2 gives two per env step. Env steps up to
    `learning_starts` earn nothing. The ratio is read as the nearest fraction with a denominator up to
    1000 (so 1/3 given as 0.333... is exactly 1/3) and the remainder is carried exactly: no drift.
    """

    def __init__(self, replay_ratio: float, learning_starts: int):
        self.ratio = Fraction(replay_ratio).limit_denominator(1000)
        self.learning_starts = learning_starts
        # The credit is credit_units / ratio.denominator: integer arithmetic, exact, and ~10x cheaper
        # per env step than Fraction's.
        self.credit_units = 0

    def earn(self, start: int, stop: int) -> int:
        """Whole updates earned by env steps (start, stop]; the remainder carries over."""
        steps = stop - max(start, self.learning_starts)
        if steps <= 0:
            return 0
        updates, self.credit_units = divmod(self.credit_units + steps * self.ratio.numerator, self.ratio.denominator)
        return updates

    def state_dict(self) -> dict[str, int]:
        credit = Fraction(self.credit_units, self.ratio.denominator)
        return {"numerator": credit.numerator, "denominator": credit.denominator}

    def load_state_dict(self, state: dict[str, int]) -> None:
        # Exact for the same replay_ratio; a branch with another ratio keeps the carried part of an
        # update (< 1) rounded down to its own grid.
        credit = Fraction(state["numerator"], state["denominator"])
        self.credit_units = math.floor(credit * self.ratio.denominator)
