"""Wrappers the loop applies to every gymnasium task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


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
