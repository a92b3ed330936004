"""dm_control's `rewards.tolerance`: 1 inside [lo, hi], a sigmoid of the distance outside it.

Written from the HumanoidBench spec §3 rather than imported from dm_control, whose install pulls
in pinned MuJoCo/labmaze builds for one 40-line function.
"""

from __future__ import annotations

import numpy as np

SIGMOIDS = ("gaussian", "hyperbolic", "long_tail", "reciprocal", "cosine", "linear", "quadratic", "tanh_squared")
# Sigmoids that reach exactly 0 at a finite distance, so value_at_margin = 0 is allowed for them.
_FINITE_SUPPORT = ("cosine", "linear", "quadratic")


def _sigmoid(d: np.ndarray, value_at_margin: float, sigmoid: str) -> np.ndarray:
    """S(d) with S(0) = 1 and S(1) = value_at_margin; d >= 0 is the distance in margins."""
    v = value_at_margin
    if sigmoid == "gaussian":
        scale = np.sqrt(-2 * np.log(v))
        return np.exp(-0.5 * (d * scale) ** 2)
    if sigmoid == "hyperbolic":
        with np.errstate(over="ignore"):  # cosh overflows to inf far out: the value is then 0, as it should be
            return 1 / np.cosh(d * np.arccosh(1 / v))
    if sigmoid == "long_tail":
        return 1 / ((d * np.sqrt(1 / v - 1)) ** 2 + 1)
    if sigmoid == "reciprocal":
        return 1 / (np.abs(d) * (1 / v - 1) + 1)
    if sigmoid == "cosine":
        scaled = d * np.arccos(2 * v - 1) / np.pi
        return np.where(np.abs(scaled) < 1, (1 + np.cos(np.pi * scaled)) / 2, 0.0)
    if sigmoid == "linear":
        scaled = d * (1 - v)
        return np.where(np.abs(scaled) < 1, 1 - scaled, 0.0)
    if sigmoid == "quadratic":
        scaled = d * np.sqrt(1 - v)
        return np.where(np.abs(scaled) < 1, 1 - scaled**2, 0.0)
    if sigmoid == "tanh_squared":
        return 1 - np.tanh(d * np.arctanh(np.sqrt(1 - v))) ** 2
    raise ValueError(f"sigmoid={sigmoid!r} is unknown; allowed: {', '.join(SIGMOIDS)}")


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
    if np.ndim(x) == 0:
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
