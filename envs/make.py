"""Build the training and evaluation vector envs from an `env` config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from envs.snapshot import Checkpointable
from envs.wrappers import ActionRepeat, ValidatedActions

SUITES = ("gymnasium", "atari", "minatar")
VECTORIZATIONS = ("sync", "async")


def _gymnasium_factory(cfg: Mapping[str, Any]):
    def make() -> gym.Env:
        kwargs = dict(cfg.get("kwargs") or {})
        if cfg.get("max_episode_steps") is not None:
            kwargs["max_episode_steps"] = int(cfg["max_episode_steps"])
        env = gym.make(cfg["id"], **kwargs)
        if not getattr(env.unwrapped, "validates_actions", False):
            env = ValidatedActions(env)
        if cfg.get("action_repeat", 1) > 1:
            env = ActionRepeat(env, int(cfg["action_repeat"]))
        return Checkpointable(env)

    return make


def episode_limit(cfg: Mapping[str, Any]) -> int | None:
    """The episode limit an env config sets, in max_episode_steps' units (agent steps), or None when it sets
    none: max_episode_steps, else for Atari its kwargs.max_episode_frames at its frame skip."""
    if cfg.get("max_episode_steps") is not None:
        return int(cfg["max_episode_steps"])
    kwargs = cfg.get("kwargs") or {}
    if cfg.get("suite") == "atari" and "max_episode_frames" in kwargs and "frame_skip" in kwargs:
        return -(-int(kwargs["max_episode_frames"]) // int(kwargs["frame_skip"]))  # the step that crosses it
    return None


def make_vector(cfg: Mapping[str, Any], *, num_envs: int) -> gym.vector.VectorEnv:
    """A vector env with SAME_STEP autoreset: an episode's true last observation is in
    info["final_obs"] and the returned observation is already the next episode's first. Every env
    refuses actions outside its action space with a ValueError (envs.wrappers.check_action)."""
    suite = cfg.get("suite", "gymnasium")
    if suite == "atari":
        from envs.atari import make_atari_vector

        return make_atari_vector(cfg["game"], num_envs, max_episode_steps=cfg.get("max_episode_steps"),
                                 vectorization=cfg.get("vectorization", "sync"), **(cfg.get("kwargs") or {}))
    if suite == "minatar":
        from envs.minatar import vector_kwargs

        cfg = {**cfg, "kwargs": vector_kwargs(cfg, num_envs)}
    elif suite != "gymnasium":
        raise ValueError(f"env.suite={suite!r} is unknown; allowed: {', '.join(SUITES)}")
    vectorization = cfg.get("vectorization", "sync")
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"env.vectorization={vectorization!r} is unknown; allowed: {', '.join(VECTORIZATIONS)}")
    vector_cls = AsyncVectorEnv if vectorization == "async" and num_envs > 1 else SyncVectorEnv
    factory = _gymnasium_factory(cfg)
    return vector_cls([factory] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def supports_state(envs: gym.vector.VectorEnv) -> bool:
    """Whether the loop can checkpoint these envs mid-episode (every sub-env is Checkpointable)."""
    try:
        envs.get_attr("state_blob")
    except AttributeError:
        return False
    return True


def normalized_score(metadata: Mapping[str, Any], episodic_return: float) -> float | None:
    """(R - random) / (reference - random) for envs whose metadata declares
    `normalization = (random score, reference score)`: Atari games (human reference, so 1 = human level)
    and the H1 tasks (success bar); None for the others."""
    if "normalization" not in metadata:
        return None
    random_score, reference_score = metadata["normalization"]
    return (episodic_return - random_score) / (reference_score - random_score)
