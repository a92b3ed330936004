"""Test doubles for the loop: an agent that counts, a replay that remembers, both tiny and exact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import fire
import fire.registry
from agents.base import AgentBase
from replay.base import Batch


@dataclass(frozen=True)
class CountingConfig:
    pass


class CountingAgent(AgentBase):
    """Acts at random (seeded through torch), learns nothing, records its updates and interventions.

    Interventions go through fire.registry like a real agent's, on one tiny Linear layer, so the typed
    options the loop passes are the ones recorded.
    """

    CONFIG = CountingConfig
    NETWORKS = ("layer",)
    STATE = ("updates", "reinits", "weight", "layer", "snapshot")
    REINIT_DEFAULTS = {"reset_optimizer": False, "reset_linear": False}

    def __init__(self, observation_space, action_space, device, precision="fp32", **cfg):
        self.config_from(cfg)
        self.device = device
        self.action_space = action_space
        self.updates = 0
        self.reinits: list[tuple[str, int]] = []  # (intervention, updates done before it)
        self.options: list = []  # the typed options of each intervention
        self.weight = torch.zeros(())
        self.layer = torch.nn.Linear(2, 2)
        self.snapshot = fire.InitSnapshot.capture(self.layer)

    def act(self, obs, *, env_steps, explore):
        low, high = self.action_space.low, self.action_space.high
        u = torch.rand(len(obs), *self.action_space.shape).numpy()
        return (low + u * (high - low)).astype(self.action_space.dtype)

    def observe(self, obs):
        pass

    def update(self, batch, *, updates, env_steps):
        assert updates == self.updates, "the loop's update counter must be the agent's"
        self.updates += 1
        self.weight += batch.rewards.mean()
        return {"losses/fake": self.weight.clone()}

    def reinit(self, name, options, batch):
        self.reinits.append((name, self.updates))
        return super().reinit(name, options, batch)

    def intervention_networks(self, batch):
        return [fire.registry.Network("layer", self.layer, self.snapshot)]

    def after_intervention(self, options, *, replaced_modules):
        self.options.append(options)

    def diagnostics(self, batch):
        return {"plasticity/fake": 0.0}


class ListReplay:
    """Keeps every transition in lists; samples with its own generator."""

    def __init__(self, gamma, seed):
        self.gamma, self.rng, self.rows = gamma, np.random.default_rng(seed), []

    def add(self, obs, actions, rewards, next_obs, terminations, truncations):
        for i in range(len(obs)):
            self.rows.append((obs[i], actions[i], rewards[i], next_obs[i], terminations[i]))

    def sample(self, batch_size):
        picks = [self.rows[i] for i in self.rng.integers(len(self.rows), size=batch_size)]
        obs, actions, rewards, next_obs, terminated = (np.stack(c) for c in zip(*picks, strict=True))
        t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        return Batch(t(obs), t(actions), t(rewards), t(next_obs), self.gamma * (1 - t(terminated)))

    def __len__(self):
        return len(self.rows)

    def state_dict(self):
        return {"rows": list(self.rows), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rows = list(state["rows"])
        self.rng.bit_generator.state = state["rng"]
