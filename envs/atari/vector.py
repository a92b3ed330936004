"""The Atari vector env: ale-py's multi-threaded C++ env (or its snapshottable Python twin) plus the few
protocol pieces it lacks."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from ale_py import roms
from ale_py.vector_env import AtariVectorEnv as _ALEVectorEnv
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from envs.atari.preprocessing import make_atari_env
from envs.atari.scores import GAMES, REFERENCE_SCORES

STICKY_LEVELS = ("frame", "agent_step")
# What fills a stack's slots from before an episode's first frame: ALE's zeros, or that first frame repeated
# (gymnasium's FrameStack with padding "reset", the wrappers of the FIRE paper's DQN code).
FRAME_STACK_STARTS = ("zeros", "repeat")
BACKENDS = ("vector", "gymnasium")
VECTORIZATIONS = ("sync", "async")


class AtariVectorEnv(VectorEnv):
    """A SAME_STEP vector env of preprocessed Atari games with one info contract whatever the backend.

    `ale_env` is ale-py's native vector env (backend `vector`) or a gymnasium Sync/AsyncVectorEnv of
    `ALEPreprocessing` games (backend `gymnasium`), both in SAME_STEP autoreset mode. On top it adds, per step:
      * `info["final_obs"]` (num_envs, 4, 84, 84) uint8 and the mask `info["_final_obs"]`: where the mask is
        set, `final_obs` is the true last observation of the ended episode and `obs` is the next episode's
        first one. Rows outside the mask repeat `obs` (a dense array, not gymnasium's object array).
      * `info["game_over"]` (num_envs,) bool: the real game ended (terminated or truncated by ALE). It differs
        from `terminated | truncated` only with episodic life, where a life loss also terminates.
      * episodic life done the DeepMind way (ale-py's own option restarts the whole game at a life loss):
        a life loss sets `terminated`, the game continues, and the next stack starts afresh like after a
        reset, so the loop and the replay see an ordinary episode boundary.
      * `frame_stack_start`: the stack slots from before an episode's first frame are zeros (ALE) or that
        first frame repeated ("repeat"); `metadata["frame_stack_start"]` tells the replay.
      * sticky actions at agent-step level (the FIRE paper's wrapper order): with probability p the whole
        agent step (all skipped frames) repeats the previous agent action; ale-py only offers per-frame.
    Rewards are never clipped here: the loop logs raw game scores and DQN clips in its update.
    `get_attr("state_blob")`/`set_attr` snapshot the games (gymnasium backend only) and this wrapper's
    per-env state, for the loop's mid-episode checkpoints.
    """

    def __init__(
        self,
        ale_env: VectorEnv,
        *,
        episodic_life: bool,
        agent_step_sticky_probability: float,
        seed: int | None,
        frame_stack_start: str = "zeros",
    ):
        self.ale_env = ale_env
        self.num_envs = ale_env.num_envs
        self.single_observation_space = ale_env.single_observation_space
        self.single_action_space = ale_env.single_action_space
        self.observation_space = ale_env.observation_space
        self.action_space = ale_env.action_space
        self.metadata = {**ale_env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP,
                         "frame_stack_start": frame_stack_start}
        self.episodic_life = episodic_life
        self.repeat_first_frame = frame_stack_start == "repeat"
        self.agent_step_sticky_probability = agent_step_sticky_probability
        self._sticky_rng = np.random.default_rng(seed)
        self._previous_actions = np.zeros(self.num_envs, dtype=np.int64)  # NOOP at each game start
        self._lives = np.zeros(self.num_envs, dtype=np.int64)
        self._stack = self.single_observation_space.shape[0]
        # Frames of the current (life-)episode in the stack; ALE's stack outlives a life loss, ours does not.
        self._frames_in_episode = np.full(self.num_envs, self._stack, dtype=np.int64)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._sticky_rng = np.random.default_rng(seed)
        obs, info = self.ale_env.reset(seed=seed, options=options)
        reset_mask = (options or {}).get("reset_mask", np.ones(self.num_envs, dtype=bool))
        self._previous_actions[reset_mask] = 0
        self._lives[reset_mask] = info["lives"][reset_mask]
        self._frames_in_episode[reset_mask] = self._new_game_frames()
        return self._pad_episode_start(obs), info

    def _new_game_frames(self) -> int:
        # Zeros: ALE zero-pads a new game's stack itself, so there is nothing to pad.
        return 1 if self.repeat_first_frame else self._stack

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions, dtype=np.int64)
        if self.agent_step_sticky_probability > 0.0:
            repeat = self._sticky_rng.random(self.num_envs) < self.agent_step_sticky_probability
            actions = np.where(repeat, self._previous_actions, actions)
        obs, rewards, terminations, truncations, info = self.ale_env.step(actions)
        game_over = terminations | truncations
        self._previous_actions = np.where(game_over, 0, actions)

        final_obs = obs.copy()
        if game_over.any():  # gymnasium's vector envs give an object array, ale-py's a dense one
            final_obs[game_over] = np.stack(info["final_obs"][game_over])
            info.pop("final_info", None)
            info.pop("_final_info", None)
        if self.episodic_life or self.repeat_first_frame:
            self._frames_in_episode = np.minimum(self._frames_in_episode + 1, self._stack)
            final_obs = self._pad_episode_start(final_obs)
            self._frames_in_episode[game_over] = self._new_game_frames()
        if self.episodic_life:
            lives = info["lives"].astype(np.int64)
            # After a game over `lives` already belongs to the new game, so only live games count here.
            life_lost = (lives < self._lives) & ~game_over
            self._lives = lives
            self._frames_in_episode[life_lost] = 1
            terminations = terminations | life_lost
        if self.episodic_life or self.repeat_first_frame:
            obs = self._pad_episode_start(obs)
        info["final_obs"] = final_obs
        info["_final_obs"] = terminations | truncations
        info["game_over"] = game_over
        return obs, rewards.astype(np.float32), terminations, truncations, info

    def _pad_episode_start(self, stacks: np.ndarray) -> np.ndarray:
        """Fill the stack frames from before the current (life-)episode began: zeros, or its first frame."""
        first = self._stack - self._frames_in_episode  # (num_envs,) index of the episode's first frame
        hidden = np.arange(self._stack) < first[:, None]  # (num_envs, stack)
        if not hidden.any():
            return stacks
        if self.repeat_first_frame:
            newest_first = np.maximum(np.arange(self._stack), first[:, None])
            return np.take_along_axis(stacks, newest_first[:, :, None, None], axis=1)
        stacks = stacks.copy()
        stacks[hidden] = 0
        return stacks

    def close_extras(self, **kwargs: Any) -> None:
        self.ale_env.close(**kwargs)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """The games' attribute `name`; for `state_blob`, each game's snapshot with this wrapper's state."""
        if not hasattr(self.ale_env, "get_attr"):
            raise AttributeError(f"{name!r}: ale-py's vector env exposes no per-game state; "
                                 "use env.kwargs.backend=gymnasium for exact resume")
        values = self.ale_env.get_attr(name)
        if name != "state_blob":
            return values
        # The agent-step sticky RNG is shared by the games, so every blob carries it (a few hundred bytes).
        return tuple(pickle.dumps({"game": blob, "previous_action": self._previous_actions[i],
                                   "lives": self._lives[i], "frames_in_episode": self._frames_in_episode[i],
                                   "sticky_rng": self._sticky_rng.bit_generator.state})
                     for i, blob in enumerate(values))

    def set_attr(self, name: str, values: Sequence[Any]) -> None:
        if not hasattr(self.ale_env, "set_attr"):
            raise AttributeError(f"{name!r}: ale-py's vector env exposes no per-game state; "
                                 "use env.kwargs.backend=gymnasium for exact resume")
        if name != "state_blob":
            self.ale_env.set_attr(name, values)
            return
        states = [pickle.loads(blob) for blob in values]
        self.ale_env.set_attr(name, [state["game"] for state in states])
        for i, state in enumerate(states):
            self._previous_actions[i] = state["previous_action"]
            self._lives[i] = state["lives"]
            self._frames_in_episode[i] = state["frames_in_episode"]
        self._sticky_rng.bit_generator.state = states[0]["sticky_rng"]


def make_atari_vector(
    game: str,
    num_envs: int,
    seed: int | None = None,
    *,
    frame_skip: int = 4,
    frame_size: int = 84,
    frame_stack: int = 4,
    noop_max: int = 30,
    episodic_life: bool = False,
    fire_reset: bool = False,
    repeat_action_probability: float = 0.25,
    sticky_actions_at: str = "frame",
    full_action_space: bool = False,
    max_episode_frames: int = 108_000,
    max_episode_steps: int | None = None,
    num_threads: int = 0,
    backend: str = "vector",
    vectorization: str = "sync",
    frame_stack_start: str = "zeros",
) -> AtariVectorEnv:
    """Build `num_envs` copies of `game` (an ALE ROM id such as `breakout` or `ms_pacman`).

    Frames: observations are (num_envs, frame_stack, frame_size, frame_size) uint8 grayscale, each agent
    step is `frame_skip` emulator frames with a max-pool over the last two. `max_episode_frames` counts
    emulator frames (108k = 30 minutes of play); `max_episode_steps`, if given, counts agent steps and
    replaces it (max_episode_steps * frame_skip frames). `sticky_actions_at` is `frame` (ALE: each frame
    repeats the previous frame's action with probability p) or `agent_step` (each agent step repeats the
    previous agent action with probability p). `frame_stack_start` pads a new episode's stack with zeros
    (ALE) or repeats its first frame (`repeat`, gymnasium's FrameStack). `seed` seeds this wrapper's RNG;
    `reset(seed=...)` reseeds it.

    `backend`: `vector` is ale-py's C++ vector env (fast, `num_threads` workers, no snapshots); `gymnasium`
    runs the same preprocessing in Python on ale-py's single-game env inside gymnasium's Sync (or, with
    `vectorization="async"`, Async) vector env: slower, but its state can be checkpointed, so runs resume
    exactly. Same seed and actions give both backends identical observations, rewards and episode ends.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is unknown; allowed: {', '.join(BACKENDS)}")
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"vectorization={vectorization!r} is unknown; allowed: {', '.join(VECTORIZATIONS)}")
    if game not in GAMES and game not in roms.get_all_rom_ids():
        raise ValueError(f"game={game!r} is not an ALE ROM id; allowed: snake_case ids such as {GAMES[:4]}")
    if frame_stack_start not in FRAME_STACK_STARTS:
        raise ValueError(f"frame_stack_start={frame_stack_start!r}; allowed: {FRAME_STACK_STARTS}")
    if sticky_actions_at not in STICKY_LEVELS:
        raise ValueError(f"sticky_actions_at={sticky_actions_at!r}; allowed: {STICKY_LEVELS}")
    if not 0.0 <= repeat_action_probability < 1.0:
        raise ValueError(f"repeat_action_probability={repeat_action_probability} must lie in [0, 1)")
    if max_episode_steps is not None:
        max_episode_frames = max_episode_steps * frame_skip
    per_frame_sticky = repeat_action_probability if sticky_actions_at == "frame" else 0.0
    if backend == "gymnasium":
        make_game = partial(make_atari_env, game, repeat_action_probability=per_frame_sticky,
                            full_action_space=full_action_space, frame_skip=frame_skip, frame_size=frame_size,
                            frame_stack=frame_stack, noop_max=noop_max, fire_reset=fire_reset,
                            max_episode_frames=max_episode_frames)
        vector_cls = AsyncVectorEnv if vectorization == "async" and num_envs > 1 else SyncVectorEnv
        games = vector_cls([make_game] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        games = _ALEVectorEnv(
            game,
            num_envs,
            num_threads=num_threads,
            max_num_frames_per_episode=max_episode_frames,
            repeat_action_probability=per_frame_sticky,
            full_action_space=full_action_space,
            autoreset_mode=AutoresetMode.SAME_STEP,
            img_height=frame_size,
            img_width=frame_size,
            grayscale=True,
            stack_num=frame_stack,
            frameskip=frame_skip,
            maxpool=True,
            noop_max=noop_max,
            episodic_life=False,  # ale-py's restarts the game at a life loss; ours continues it
            life_loss_info=False,
            reward_clipping=False,
            use_fire_reset=fire_reset,
        )
    vector_env = AtariVectorEnv(
        games,
        episodic_life=episodic_life,
        agent_step_sticky_probability=repeat_action_probability - per_frame_sticky,
        seed=seed,
        frame_stack_start=frame_stack_start,
    )
    if game in REFERENCE_SCORES:  # (random, human): eval/normalized_score is the human-normalised score
        vector_env.metadata["normalization"] = REFERENCE_SCORES[game]
    return vector_env
