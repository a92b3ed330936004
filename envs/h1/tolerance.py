"""dm_control's `rewards.tolerance`: 1 inside [lo, hi], a sigmoid of the distance outside it.

Written from the HumanoidBench spec §3 rather than imported from dm_control, whose install pulls
in pinned MuJoCo/labmaze builds for one 40-line function.
"""

from __future__ import annotations

import functools

import numpy as np


def _hyperbolic(s):
    with np.errstate(over="ignore"):  # cosh overflows to inf far out: the value is then 0, as it should be
        return 1 / np.cosh(s)


# Each sigmoid as (c(v), S(s)): the distance in margins d is scaled to s = c(v)·d, with c chosen so that
# S(c(v)) = v at one margin. Finite-support sigmoids are S(s) for |s| < 1 and 0 beyond. S works on a
# float or an array alike; squares are s * s, which a float turns into inf instead of raising.
_SIGMOIDS = {
    "gaussian": (lambda v: np.sqrt(-2 * np.log(v)), lambda s: np.exp(-0.5 * (s * s))),
    "hyperbolic": (lambda v: np.arccosh(1 / v), _hyperbolic),
    "long_tail": (lambda v: np.sqrt(1 / v - 1), lambda s: 1 / (s * s + 1)),
    "reciprocal": (lambda v: 1 / v - 1, lambda s: 1 / (abs(s) + 1)),
    "cosine": (lambda v: np.arccos(2 * v - 1) / np.pi, lambda s: (1 + np.cos(np.pi * s)) / 2),
    "linear": (lambda v: 1 - v, lambda s: 1 - s),
    "quadratic": (lambda v: np.sqrt(1 - v), lambda s: 1 - s * s),
    "tanh_squared": (lambda v: np.arctanh(np.sqrt(1 - v)), lambda s: 1 - np.tanh(s) ** 2),
}
SIGMOIDS = tuple(_SIGMOIDS)
# Sigmoids that reach exactly 0 at a finite distance, so value_at_margin = 0 is allowed for them.
_FINITE_SUPPORT = ("cosine", "linear", "quadratic")


@functools.cache
def _scale(sigmoid: str, value_at_margin: float) -> float:
    return float(_SIGMOIDS[sigmoid][0](value_at_margin))


def _sigmoid(d, value_at_margin: float, sigmoid: str):
    """S(d) with S(0) = 1 and S(1) = value_at_margin; d >= 0 is the distance in margins, a float or an
    array. A float stays in Python floats where it can: rewards call this a few times per env step, right
    after mj_step has evicted numpy's code from the caches, where each numpy call costs microseconds."""
    s = d * _scale(sigmoid, value_at_margin)
    shape = _SIGMOIDS[sigmoid][1]
    if sigmoid not in _FINITE_SUPPORT:
        return shape(s)
    if isinstance(s, float):
        return shape(s) if abs(s) < 1 else 0.0
    return np.where(np.abs(s) < 1, shape(s), 0.0)


def tolerance(x, bounds=(0.0, 0.0), margin=0.0, sigmoid="gaussian", value_at_margin=0.1):
    """1 where bounds[0] <= x <= bounds[1] (inclusive, ±inf allowed); outside, S(distance / margin),
    or 0 when margin is 0. A scalar gives a Python float, an array an array of the same shape."""
    lo, hi = bounds
    if lo > hi:
        raise ValueError(f"bounds={bounds!r} must satisfy lower <= upper")
    if margin < 0:
        raise ValueError(f"margin={margin!r} must be >= 0")
    if sigmoid not in SIGMOIDS:
        raise ValueError(f"sigmoid={sigmoid!r} is unknown; allowed: {', '.join(SIGMOIDS)}")
    if margin > 0 and not (0 <= value_at_margin < 1 and (value_at_margin > 0 or sigmoid in _FINITE_SUPPORT)):
        allowed = "[0, 1)" if sigmoid in _FINITE_SUPPORT else "(0, 1)"
        raise ValueError(f"value_at_margin={value_at_margin!r} must be in {allowed} for sigmoid {sigmoid!r}")
    if isinstance(x, float | int) or np.ndim(x) == 0:
        # Scalar fast path (rewards call this a few times per env step): same formulas, no arrays.
        x = float(x)
        if lo <= x <= hi:
            return 1.0
        if margin == 0:
            return 0.0
        distance = (lo - x if x < lo else x - hi) / margin
        return float(_sigmoid(distance, value_at_margin, sigmoid))
    x = np.asarray(x, dtype=np.float64)
    inside = (lo <= x) & (x <= hi)
    if margin == 0:
        return np.where(inside, 1.0, 0.0)
    distance = np.where(x < lo, lo - x, x - hi) / margin
    return np.where(inside, 1.0, _sigmoid(distance, value_at_margin, sigmoid))
