"""Evaluation videos: one deterministic episode per evaluation, written as an mp4 in the run directory.

MuJoCo tasks (H1, gymnasium) are rendered offscreen (`render_mode="rgb_array"`; on a headless machine
train.py selects MUJOCO_GL=egl unless you set MUJOCO_GL yourself, e.g. to osmesa). Atari videos show what
the agent sees: the newest 84x84 grayscale frame of each observation, upscaled 4x.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import Agent
from envs import make_vector

ATARI_UPSCALE = 4  # 84 -> 336 px, a multiple of 16 as video codecs want


def _video_env_config(env_cfg: Mapping[str, Any]) -> dict[str, Any]:
    if env_cfg["suite"] == "atari":
        return dict(env_cfg)
    return {**env_cfg, "kwargs": {**(env_cfg.get("kwargs") or {}), "render_mode": "rgb_array"}}


def frames_per_second(env_cfg: Mapping[str, Any], metadata: Mapping[str, Any]) -> float:
    """Real-time playback: one video frame per agent step."""
    if env_cfg["suite"] == "atari":
        return 60.0 / int((env_cfg.get("kwargs") or {}).get("frame_skip", 4))  # the 2600 runs at 60 Hz
    return float(metadata.get("render_fps", 30)) / int(env_cfg.get("action_repeat", 1))


class VideoRecorder:
    """Owns a one-env vector env built like the eval envs, with rendering on."""

    def __init__(self, env_cfg: Mapping[str, Any], max_steps: int):
        self.env_cfg = env_cfg
        self.max_steps = max_steps
        self.envs = make_vector(_video_env_config(env_cfg), num_envs=1)
        self.fps = frames_per_second(env_cfg, self.envs.metadata)

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        if self.env_cfg["suite"] == "atari":
            gray = obs[0, -1].repeat(ATARI_UPSCALE, 0).repeat(ATARI_UPSCALE, 1)
            return np.stack([gray] * 3, axis=-1)
        return np.asarray(self.envs.render()[0])

    def record(self, agent: Agent, *, env_steps: int, seed: int, path: Path) -> int:
        """Play one episode (at most max_steps agent steps) with the deterministic policy; returns frames."""
        import imageio.v2 as imageio  # the optional `video` extra

        obs, _ = self.envs.reset(seed=seed)
        frames = [self._frame(obs)]
        for _ in range(self.max_steps):
            obs, _, terminations, truncations, infos = self.envs.step(
                agent.act(obs, env_steps=env_steps, explore=False))
            # SAME_STEP autoreset: after the last step the env already shows the next episode.
            if infos.get("game_over", terminations | truncations)[0]:
                break
            frames.append(self._frame(obs))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.mp4")
        imageio.mimwrite(tmp, frames, fps=self.fps, macro_block_size=16)
        tmp.replace(path)
        return len(frames)

    def close(self) -> None:
        self.envs.close()
