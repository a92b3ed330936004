"""Test doubles for the loop: an agent that counts, a replay that remembers, both tiny and exact."""

from __future__ import annotations

import numpy as np
import torch

from replay.base import Batch


class CountingAgent:
    """Acts at random (seeded through torch), learns nothing, records when it was updated and reinitialised."""

    REINIT_METHODS = ("fire", "reset")

    def __init__(self, observation_space, action_space, device, precision="fp32", gamma=0.99, batch_size=4):
        self.device = device
        self.action_space = action_space
        self.updates = 0
        self.reinits: list[tuple[str, int]] = []  # (method, updates done before it)
        self.weight = torch.zeros(())

    def act(self, obs, *, env_steps, explore):
        low, high = self.action_space.low, self.action_space.high
        u = torch.rand(len(obs), *self.action_space.shape).numpy()
        return (low + u * (high - low)).astype(self.action_space.dtype)

    def observe(self, obs):
        pass

    def update(self, batch):
        self.updates += 1
        self.weight += batch.rewards.mean()
        return {"losses/fake": self.weight.clone()}

    def reinit(self, method, options, batch):
        self.reinits.append((method, self.updates))
        return {}

    def diagnostics(self, batch):
        return {"plasticity/fake": 0.0}

    def state_dict(self):
        return {"updates": self.updates, "reinits": list(self.reinits), "weight": self.weight.clone()}

    def load_state_dict(self, state):
        self.updates, self.reinits, self.weight = state["updates"], list(state["reinits"]), state["weight"].clone()


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


class DormancyAgent(CountingAgent):
    """A CountingAgent whose value network's tau=0.025 dormant ratio is (updates since its last
    intervention) / UPDATES_TO_DORMANT, capped at 1: a signal that rises with training and an
    intervention resets, known exactly at every env step."""

    UPDATES_TO_DORMANT = 40

    def diagnostics(self, batch):
        since = self.updates - (self.reinits[-1][1] if self.reinits else 0)
        return {"plasticity/dormant_0.025": min(1.0, since / self.UPDATES_TO_DORMANT)}
