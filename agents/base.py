"""The agent contract: the one interface the shared actor-learner loop talks to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch

from replay.base import Batch


class Agent(Protocol):
    """SAC and DQN implement this; the loop never looks inside an agent.

    Units: `env_steps` counts steps of the underlying environment summed over the vector envs
    (action repeat included); it is the x-axis of every log.
    """

    device: torch.device

    def act(self, obs: np.ndarray, *, env_steps: int, explore: bool) -> np.ndarray:
        """Actions for a batch of observations (num_envs, *obs_shape), as numpy, env-ready.

        explore=False is the evaluation policy (SAC: tanh of the mean; DQN: epsilon 0.001).
        """

    def observe(self, obs: np.ndarray) -> None:
        """See the actor-side observations of one vector step (observation normaliser statistics).

        Called for every vector step, random-action warm-up included; a no-op for agents without one.
        """

    def update(self, batch: Batch) -> Mapping[str, torch.Tensor]:
        """One gradient update. Returns detached 0-d tensors keyed by TensorBoard tag
        (`losses/critic`, `losses/alpha`, ...); the loop calls .item() only when it logs."""

    def reinit(self, method: str, options: Mapping[str, Any], batch: Batch) -> Mapping[str, Any]:
        """Apply an intervention (`fire`, `reset`, `snp`, `head_reset`, `redo`, `pi`) to the networks this
        agent declares, with this agent's state semantics (targets, optimiser moments, temperature).

        Returns {network name: fire.Report}; `batch` is a replay sample for data-driven methods (ReDo).
        Raises ValueError naming the method and the allowed ones if the agent does not support it.
        """

    def diagnostics(self, batch: Batch) -> Mapping[str, float]:
        """Plasticity diagnostics (`plasticity/*` tags) on a replay batch; cheap, no gradient step."""

    def state_dict(self) -> dict[str, Any]:
        """Everything for exact resume: networks, targets, optimisers, temperature, normaliser,
        the init snapshot used by resets, and any RNG the agent owns."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
