"""Uniform replay for vector observations: preallocated numpy rings, one vectorised write per vector step.

Layout: a flat ring of `capacity` transitions; a vector step writes its `num_envs` transitions to
consecutive slots. obs and next_obs are stored separately: for low-dimensional states this costs less
than the bookkeeping needed to recover next_obs from the following slot (episode ends, interleaved envs),
and it makes a truncated transition's successor simply the true final observation the loop hands in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from replay.base import Batch, lazy_zeros, require_memory

DISCOUNT_DTYPE = REWARD_DTYPE = np.float32


class UniformReplay:
    """Uniform sampling with replacement over every stored transition (see the module docstring)."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | str,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype | str,
        num_envs: int,
        gamma: float,
        device: str | torch.device = "cpu",
        seed: int = 0,
        check_memory: bool = True,
    ):
        if capacity < num_envs:
            raise ValueError(f"capacity={capacity} must be >= num_envs={num_envs}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma={gamma} must lie in [0, 1]")
        self.capacity = capacity
        self.num_envs = num_envs
        self.gamma = gamma
        self.device = torch.device(device)
        # Float observations and actions are stored (and sampled) as float32 whatever the space says
        # (MuJoCo's are float64): half the memory, and the learner computes in float32 anyway.
        obs_dtype = np.float32 if np.dtype(obs_dtype).kind == "f" else np.dtype(obs_dtype)
        action_dtype = np.float32 if np.dtype(action_dtype).kind == "f" else np.int64

        needed = self.nbytes_for(capacity, obs_shape, obs_dtype, action_shape, action_dtype)
        if check_memory:
            require_memory(f"UniformReplay(capacity={capacity})", needed)
        # A large, mostly empty buffer costs little until filled.
        self.obs = lazy_zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = lazy_zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = lazy_zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = lazy_zeros(capacity, dtype=REWARD_DTYPE)
        self.discounts = lazy_zeros(capacity, dtype=DISCOUNT_DTYPE)  # gamma * (1 - terminated)
        self.pos = 0  # next slot to write
        self.size = 0  # filled slots
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def nbytes_for(capacity: int, obs_shape, obs_dtype, action_shape, action_dtype) -> int:
        obs_bytes = int(np.prod(obs_shape)) * np.dtype(obs_dtype).itemsize
        action_bytes = int(np.prod(action_shape)) * np.dtype(action_dtype).itemsize
        per_transition = 2 * obs_bytes + action_bytes + np.dtype(REWARD_DTYPE).itemsize + np.dtype(
            DISCOUNT_DTYPE).itemsize
        return capacity * per_transition

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminations: np.ndarray,
        truncations: np.ndarray,
    ) -> None:
        """Store one vector step (leading num_envs axis); truncation keeps the discount (bootstrap)."""
        end = self.pos + self.num_envs
        # A slice unless the vector step wraps around: a slice assignment is several times cheaper than
        # a fancy-indexed one, and this runs every env step.
        slots = slice(self.pos, end) if end <= self.capacity else np.arange(self.pos, end) % self.capacity
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.discounts[slots] = self.gamma * (1.0 - np.asarray(terminations, dtype=DISCOUNT_DTYPE))
        self.pos = end % self.capacity
        self.size = min(self.size + self.num_envs, self.capacity)

    def __len__(self) -> int:
        return self.size

    def end_episodes(self, next_obs: np.ndarray) -> None:
        """Nothing to cut: each transition stores its own next_obs, so no episode spans two slots."""

    def sample(self, batch_size: int) -> Batch:
        if self.size == 0:
            raise ValueError("UniformReplay.sample: the replay is empty")
        index = self.rng.integers(0, self.size, size=batch_size)
        return self.batch_at(index)

    def batch_at(self, index: np.ndarray) -> Batch:
        """The transitions at these slots, on the learner's device (one gather copy per field)."""
        return Batch(
            obs=self._to_device(self.obs[index]),
            actions=self._to_device(self.actions[index]),
            rewards=self._to_device(self.rewards[index]),
            next_obs=self._to_device(self.next_obs[index]),
            discounts=self._to_device(self.discounts[index]),
        )

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)

    _ARRAYS = ("obs", "next_obs", "actions", "rewards", "discounts")

    def state_dict(self) -> dict[str, Any]:
        """The filled slots by reference (views, no copy), the write position and the sampling RNG."""
        state: dict[str, Any] = {name: getattr(self, name)[: self.size] for name in self._ARRAYS}
        state.update(pos=self.pos, size=self.size, capacity=self.capacity, rng=self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay state: capacity {state['capacity']}, not {self.capacity} (replay.capacity)")
        for name in self._ARRAYS:
            current = getattr(self, name)
            if current.shape[1:] != state[name].shape[1:]:
                raise ValueError(f"replay state {name!r}: shape {state[name].shape[1:]}, not {current.shape[1:]}")
            current[: state["size"]] = state[name]
        self.pos, self.size = int(state["pos"]), int(state["size"])
        self.rng.bit_generator.state = state["rng"]
