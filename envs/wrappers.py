"""Wrappers the loop applies to every gymnasium task, and the action check every env runs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def check_action(space: gym.Space, action: Any) -> np.ndarray:
    """`action` as an array if it is a member of `space`, else a ValueError saying which entries are wrong.

    Envs would otherwise broadcast a wrong shape, clip or truncate out-of-range values, wrap -1 to the
    last action, zero every control on a NaN (MuJoCo), or hang (ale-py's vector env). Box, Discrete and
    MultiDiscrete spaces are checked; other spaces are left to the env."""
    array = np.asarray(action)
    if not isinstance(space, gym.spaces.Box | gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        return array
    if array.shape != space.shape or not _within(space, array):
        raise ValueError(f"invalid action for {space}: {_reason(space, array)}")
    return array


def _within(space: gym.spaces.Box | gym.spaces.Discrete | gym.spaces.MultiDiscrete, array: np.ndarray) -> bool:
    if isinstance(space, gym.spaces.Box):
        # One reduction (the hot path of every env step): positive below low or above high, NaN for a NaN
        # and for an infinity at an infinite bound (inf - inf), and NaN <= 0 is False.
        return array.dtype.kind in "biuf" and bool(np.maximum(space.low - array, array - space.high).max() <= 0)
    return np.issubdtype(array.dtype, np.integer) and bool(((array >= space.start) & (array <= _top(space))).all())


def _top(space: gym.spaces.Discrete | gym.spaces.MultiDiscrete) -> np.ndarray:
    """The largest valid action (per entry)."""
    return space.start + (space.n if isinstance(space, gym.spaces.Discrete) else space.nvec) - 1


def _reason(space: gym.Space, array: np.ndarray) -> str:
    if array.shape != space.shape:
        return f"shape {array.shape}, expected {space.shape}"
    if isinstance(space, gym.spaces.Box):
        if array.dtype.kind not in "biuf":
            return f"dtype {array.dtype}, expected numbers"
        finite = np.isfinite(array)
        if not finite.all():
            return f"non-finite value(s) {array[~finite].tolist()}{_where(~finite)}"
        low, high = space.low, space.high
    else:
        if not np.issubdtype(array.dtype, np.integer):
            return f"dtype {array.dtype}, expected integers: {array.ravel()[:8].tolist()}"
        low, high = space.start, _top(space)
    outside = (array < low) | (array > high)
    low, high = np.broadcast_to(low, array.shape)[outside], np.broadcast_to(high, array.shape)[outside]
    bounds = ", ".join(f"{v} not in [{lo}, {hi}]" for v, lo, hi in zip(array[outside].tolist(), low.tolist(),
                                                                       high.tolist(), strict=True))
    return f"out of range{_where(outside)}: {bounds}"


def _where(mask: np.ndarray) -> str:
    if mask.ndim == 0:
        return ""
    return f" at index {np.flatnonzero(mask).tolist() if mask.ndim == 1 else np.argwhere(mask).tolist()}"


class ValidatedActions(gym.Wrapper):
    """Refuse actions outside the action space with a clear error (`check_action`), before the env sees them."""

    def step(self, action):
        return self.env.step(check_action(self.action_space, action))


class ActionRepeat(gym.Wrapper):
    """Repeat each agent action `repeat` env steps, summing rewards and stopping early at an episode's end.

    Applied outside the time limit (as in SimBa's HumanoidBench setting: 1000 env steps = 500 agent
    steps at repeat 2). `info` is the last inner step's.
    """

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"env.action_repeat must be >= 1, got {repeat}")
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, np.float64(total), terminated, truncated, info
