"""Evaluation videos: one deterministic episode per evaluation, written as an mp4 in the run directory.

Frames come from the env's own `render()` in `rgb_array` mode: MuJoCo tasks (H1, gymnasium) render
offscreen (on a headless machine train.py selects MUJOCO_GL=egl unless you set MUJOCO_GL yourself, e.g.
to osmesa), classic control through pygame, and the Atari envs show what the agent sees (the newest
frame of each observation, upscaled). Playback is real time: the env's `render_fps` per env step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agents.base import Agent
from envs import make_vector
from loop.episodes import episode_ended
from loop.signals import StopRequested


def frames_per_second(env_cfg: Mapping[str, Any], metadata: Mapping[str, Any]) -> float:
    """Real-time playback: one video frame per agent step of `action_repeat` env steps."""
    return float(metadata.get("render_fps", 30)) / int(env_cfg.get("action_repeat", 1))


class VideoRecorder:
    """Owns a one-env vector env built like the eval envs, with rendering on, until close()."""

    def __init__(self, env_cfg: Mapping[str, Any], max_steps: int):
        import imageio.v2  # noqa: F401  (the optional `video` extra: fail here, before an episode is played)

        self.max_steps = max_steps
        self.envs = make_vector({**env_cfg, "kwargs": {**(env_cfg.get("kwargs") or {}), "render_mode": "rgb_array"}},
                                num_envs=1)
        self.fps = frames_per_second(env_cfg, self.envs.metadata)

    def record(self, agent: Agent, *, env_steps: int, seed: int, path: Path,
               stop_requested: Callable[[], bool] = lambda: False) -> int:
        """Play one episode (at most max_steps agent steps) with the deterministic policy; returns frames.
        Raises StopRequested, writing nothing, as soon as `stop_requested()` is true."""
        import imageio.v2 as imageio

        obs, _ = self.envs.reset(seed=seed)
        frames = [self.envs.render()[0]]
        for _ in range(self.max_steps):
            if stop_requested():
                raise StopRequested
            obs, _, terminations, truncations, infos = self.envs.step(
                agent.act(obs, env_steps=env_steps, explore=False))
            # SAME_STEP autoreset: after the last step the env already shows the next episode.
            if episode_ended(terminations, truncations, infos)[0]:
                break
            frames.append(self.envs.render()[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.mp4")
        imageio.mimwrite(tmp, frames, fps=self.fps, macro_block_size=16)
        tmp.replace(path)
        return len(frames)

    def close(self) -> None:
        self.envs.close()
