"""The replay contract shared by the loop and every agent: what goes in, what comes out."""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class Batch:
    """A sampled minibatch, already on the learner's device.

    `discounts` folds the episode end and the n-step horizon into one factor, so every agent's
    target is `rewards + discounts * next_value`: it is gamma**k (k = steps summed into `rewards`,
    1 for one-step replay) and 0 where the episode *terminated* inside those k steps. Truncation
    (time limits) keeps gamma**k: the next state is bootstrapped, as it must be.
    """

    obs: torch.Tensor  # (B, *obs_shape): float32 for vector obs, uint8 for pixels
    actions: torch.Tensor  # (B, *action_shape) float32, or (B,) int64 for discrete actions
    rewards: torch.Tensor  # (B,) float32, raw (agents clip/scale if they want to)
    next_obs: torch.Tensor  # (B, *obs_shape), same dtype as obs
    discounts: torch.Tensor  # (B,) float32, gamma**k * (1 - terminated)


class Replay(Protocol):
    """Anything the loop can fill and the learner can sample from."""

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminations: np.ndarray,
        truncations: np.ndarray,
    ) -> None:
        """Store one vector step: every array has a leading num_envs axis.

        `next_obs` is the true successor of `obs`, also at an episode's end (the loop takes it from
        the vector env's `final_obs`); the loop's next `obs` is then the reset observation.
        """

    def end_episodes(self, next_obs: np.ndarray) -> None:
        """End every running episode after its newest transition (as a truncation, successor `next_obs`):
        called when a run branches from a checkpoint and its envs start fresh episodes."""

    def sample(self, batch_size: int) -> Batch: ...

    def __len__(self) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def require_memory(what: str, needed: int) -> None:
    """Fail before allocating a replay that would not fit in RAM, with the numbers."""
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise MemoryError(f"{what} needs {needed / 2**30:.2f} GiB, only {available / 2**30:.2f} GiB available; "
                          "lower replay.capacity (or pass check_memory=False)")


def lazy_zeros(shape: int | tuple[int, ...], dtype: np.dtype | type | str) -> np.ndarray:
    """A zero array whose pages cost memory only once written: it lives in an anonymous mmap. np.zeros gives
    no such promise: glibc serves blocks below its mmap threshold from the heap and clears them there, and
    the threshold grows (up to 32 MiB) each time a larger block is freed, so a replay built after another one
    was freed (train.py's config check) touched every page of its smaller arrays (+8 MiB on h1-walk)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).reshape(shape)
