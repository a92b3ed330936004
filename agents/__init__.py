"""Agents (SAC, DQN) behind the one contract in agents.base, and the factory the loop uses."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch

from agents.base import Agent

# name -> "module:Class"; imported on demand so one agent's dependencies never load for another.
AGENTS = {"sac": "agents.sac:SAC", "dqn": "agents.dqn:DQN"}


def agent_class(name: str) -> type:
    if name not in AGENTS:
        raise ValueError(f"agent={name!r} is unknown; allowed: {', '.join(AGENTS)}")
    module, cls = AGENTS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_agent(cfg: Mapping[str, Any], observation_space: gym.Space, action_space: gym.Space,
               device: torch.device, precision: str = "fp32") -> Agent:
    """Build the agent named by cfg["name"] from its agent.* config (typed by the agent's CONFIG); `precision`
    is the learner's (agents.precision)."""
    return agent_class(cfg["name"])(observation_space, action_space, device, precision=precision, **cfg)


__all__ = ["AGENTS", "Agent", "agent_class", "make_agent"]
