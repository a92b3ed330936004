"""The reward building blocks shared by the H1 tasks (HumanoidBench spec §2.4)."""

from __future__ import annotations

import numpy as np

from envs.h1.tolerance import tolerance

STAND_HEIGHT = 1.65  # m, head height of a standing H1
# Every standing term uses the same margin, a quarter of the H1 stand height, also when a task
# (balance) raises the bound.
_STAND_MARGIN = STAND_HEIGHT / 4


def small_control(actuator_force: np.ndarray) -> float:
    """In [0.8, 1]: each actuator scores 1 - (f/10)² below 10 N·m and 0 above; mean, then 4:1 with a
    constant 1 so that strong torques cost at most 20 % of the reward. actuator_force: (19,).

    This is tolerance(f, margin=10, sigmoid="quadratic", value_at_margin=0) in closed form (bitwise
    equal; a test checks it), 5x faster on the per-step path. sum / size is np.mean's own arithmetic
    without its ~5 us of dispatch."""
    per_actuator = np.maximum(1.0 - np.square(actuator_force / 10.0), 0.0)
    return (4.0 + float(per_actuator.sum()) / per_actuator.size) / 5.0


def standing(head_z: float, height: float = STAND_HEIGHT) -> float:
    """1 with the head at or above `height`, 0.1 at a margin (1.65/4 m) below it."""
    return tolerance(head_z, bounds=(height, np.inf), margin=_STAND_MARGIN)


def upright(u: float, threshold: float = 0.9) -> float:
    """u = z-component of the torso's z-axis; 1 above `threshold`, linear to 0 over 1.9 below it."""
    return tolerance(u, bounds=(threshold, np.inf), margin=1.9, sigmoid="linear", value_at_margin=0.0)


def move(vx: float, speed: float) -> float:
    """In [1/6, 1]: (5·clip(vx/speed, 0, 1) + 1)/6 for the centre-of-mass x-velocity vx."""
    reached = tolerance(vx, bounds=(speed, np.inf), margin=speed, sigmoid="linear", value_at_margin=0.0)
    return (5.0 * reached + 1.0) / 6.0


def dont_move(vx: float, vy: float) -> float:
    """Mean of gaussian scores of the horizontal centre-of-mass velocities, 0.1 at 2 m/s."""
    return 0.5 * (tolerance(vx, margin=2.0) + tolerance(vy, margin=2.0))
