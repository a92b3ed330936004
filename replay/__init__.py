"""Replay buffers: uniform (vector observations) and frame-efficient Atari replay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch

from replay.base import Batch, Replay

KINDS = ("auto", "uniform", "atari")


def make_replay(cfg: Mapping[str, Any], observation_space: gym.Space, action_space: gym.Space, *,
                num_envs: int, gamma: float, device: torch.device, seed: int,
                frame_stack_start: str = "zeros") -> Replay:
    """The replay named by cfg["kind"]; `auto` picks frame-efficient replay for stacked uint8 frames (pixels
    0..255, not MinAtar's 0/1 object maps), which pads a stack before an episode's start as the env does
    (`frame_stack_start`, env metadata)."""
    kind = cfg.get("kind", "auto")
    if kind not in KINDS:
        raise ValueError(f"replay.kind={kind!r} is unknown; allowed: {', '.join(KINDS)}")
    if kind == "auto":
        stacked_frames = (observation_space.dtype == "uint8" and len(observation_space.shape) == 3
                          and int(observation_space.high.max()) == 255)
        kind = "atari" if stacked_frames else "uniform"
    if kind == "atari":
        from replay.atari import AtariReplay

        return AtariReplay(capacity=int(cfg["capacity"]), frame_stack=observation_space.shape[0],
                           frame_shape=observation_space.shape[1:], num_envs=num_envs, gamma=gamma,
                           n_step=int(cfg.get("n_step", 1)), device=device, seed=seed,
                           frame_stack_start=frame_stack_start)
    from replay.uniform import UniformReplay

    if int(cfg.get("n_step", 1)) != 1:
        raise ValueError(f"replay.n_step={cfg['n_step']} needs replay.kind=atari; uniform replay is one-step")
    return UniformReplay(capacity=int(cfg["capacity"]), obs_shape=observation_space.shape,
                         obs_dtype=observation_space.dtype, action_shape=action_space.shape,
                         action_dtype=action_space.dtype, num_envs=num_envs, gamma=gamma,
                         device=device, seed=seed)


__all__ = ["KINDS", "Batch", "Replay", "make_replay"]
