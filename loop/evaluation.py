"""Evaluation: episodes of the deterministic policy, and optionally a video, on envs of their own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Agent
from envs import make_vector, normalized_score
from envs.make import episode_limit
from loop.episodes import episode_ended
from loop.guard import check_finite
from loop.signals import StopRequested
from loop.video import VideoRecorder


def eval_env_config(env_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The training env's config with evaluation episodes capped at `eval_max_episode_steps` (same units as
    `max_episode_steps`), so that a policy that stalls cannot stretch one evaluation episode for minutes.
    The cap only shortens: episodes the training env already ends sooner (e.g. Atari's
    kwargs.max_episode_frames) keep that limit."""
    cap = env_cfg.get("eval_max_episode_steps")
    if cap is None:
        return dict(env_cfg)
    limit = episode_limit(env_cfg)
    return {**env_cfg, "max_episode_steps": int(cap) if limit is None else min(int(cap), limit)}


def eval_seed(seed: int, env_steps: int) -> int:
    """One seed per evaluation, so that resumed and uninterrupted runs evaluate identically. Below 2**30 so
    that seed + env index stays a valid int32 seed (ALE's limit)."""
    return int(np.random.SeedSequence([seed, 1, env_steps]).generate_state(1)[0]) >> 2


class Evaluator:
    """`eval.episodes` episodes on `env.eval_num_envs` envs, or as many as finish within `eval.max_env_steps`
    (summed over the eval envs; unfinished episodes are not counted), plus a video when `eval.video`.

    The envs are built at the first evaluation and live until close() (the end of the run's `with` block).
    Every step polls `stop_requested`, so that a signal abandons an evaluation within one env step."""

    def __init__(self, env_cfg: Mapping[str, Any], eval_cfg: Mapping[str, Any], *, seed: int,
                 stop_requested: Callable[[], bool]):
        self.env_cfg = eval_env_config(env_cfg)
        self.eval_cfg = eval_cfg
        self.seed = seed
        self.action_repeat = int(env_cfg.get("action_repeat", 1))
        self.stop_requested = stop_requested
        self.envs: gym.vector.VectorEnv | None = None
        self.video: VideoRecorder | None = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(self, agent: Agent, env_steps: int) -> dict[str, float]:
        """The eval/* figures ({} when no episode finished). Raises StopRequested or NonFiniteError."""
        if self.envs is None:
            self.envs = make_vector(self.env_cfg, num_envs=int(self.env_cfg["eval_num_envs"]))
        envs, episodes = self.envs, self.eval_cfg["episodes"]
        step_budget = self.eval_cfg.get("max_env_steps") or np.inf
        n = envs.num_envs
        quota = np.full(n, np.iinfo(np.int64).max) if episodes is None else \
            np.array([episodes // n + (i < episodes % n) for i in range(n)])
        obs, _ = envs.reset(seed=eval_seed(self.seed, env_steps))
        check_finite(obs, "evaluation reset observation", "eval env(s)", env_steps)
        running, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
        finished = np.zeros(n, dtype=np.int64)
        returns, episode_lengths = [], []
        steps = 0
        while (finished < quota).any() and steps < step_budget:
            if self.stop_requested():
                raise StopRequested
            actions = agent.act(obs, env_steps=env_steps, explore=False)
            check_finite(actions, "evaluation action", "the agent (not the env), for eval env(s)", env_steps)
            obs, rewards, terminations, truncations, infos = envs.step(actions)
            check_finite(obs, "evaluation observation", "eval env(s)", env_steps)
            check_finite(rewards, "evaluation reward", "eval env(s)", env_steps)
            steps += n * self.action_repeat
            running += rewards
            lengths += 1
            for i in np.flatnonzero(episode_ended(terminations, truncations, infos)):
                if finished[i] < quota[i]:
                    returns.append(running[i])
                    episode_lengths.append(lengths[i] * self.action_repeat)
                    finished[i] += 1
                running[i], lengths[i] = 0.0, 0
        if not returns:
            return {}
        figures = {"eval/episodic_return": float(np.mean(returns)),
                   "eval/episodic_return_std": float(np.std(returns)),
                   "eval/episodic_length": float(np.mean(episode_lengths)),
                   "eval/episodes": float(len(returns))}
        score = normalized_score(envs.metadata, figures["eval/episodic_return"])
        if score is not None:
            figures["eval/normalized_score"] = score
        return figures

    def record_video(self, agent: Agent, env_steps: int, path: Path) -> int:
        """One episode from the evaluation's first seed as an mp4 at `path`; returns its frames."""
        if self.video is None:
            self.video = VideoRecorder(self.env_cfg, int(self.eval_cfg.get("video_max_steps", 1000)))
        return self.video.record(agent, env_steps=env_steps, seed=eval_seed(self.seed, env_steps), path=path,
                                 stop_requested=self.stop_requested)

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None
        if self.video is not None:
            self.video.close()
            self.video = None
