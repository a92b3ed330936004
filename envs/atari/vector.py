"""The Atari vector env: ale-py's multi-threaded C++ env plus the few protocol pieces it lacks."""

from __future__ import annotations

from typing import Any

import numpy as np
from ale_py import roms
from ale_py.vector_env import AtariVectorEnv as _ALEVectorEnv
from gymnasium.vector import AutoresetMode, VectorEnv

from envs.atari.scores import GAMES

STICKY_LEVELS = ("frame", "agent_step")


class AtariVectorEnv(VectorEnv):
    """ale-py's native vector env in SAME_STEP autoreset mode, with gymnasium's SAME_STEP info contract.

    On top of ale-py it adds, per step:
      * `info["final_obs"]` (num_envs, 4, 84, 84) uint8 and the mask `info["_final_obs"]`: where the mask is
        set, `final_obs` is the true last observation of the ended episode and `obs` is the next episode's
        first one. Rows outside the mask repeat `obs` (a dense array, not gymnasium's object array).
      * `info["game_over"]` (num_envs,) bool: the real game ended (terminated or truncated by ALE). It differs
        from `terminated | truncated` only with episodic life, where a life loss also terminates.
      * episodic life done the DeepMind way (ale-py's own option restarts the whole game at a life loss):
        a life loss sets `terminated`, the game continues, and the next stack starts afresh like after a
        reset (older frames zero), so the loop and the replay see an ordinary episode boundary.
      * sticky actions at agent-step level (the FIRE paper's wrapper order): with probability p the whole
        agent step (all skipped frames) repeats the previous agent action; ale-py only offers per-frame.
    Rewards are never clipped here: the loop logs raw game scores and DQN clips in its update.
    """

    def __init__(
        self,
        ale_env: _ALEVectorEnv,
        *,
        episodic_life: bool,
        agent_step_sticky_probability: float,
        seed: int | None,
    ):
        self.ale_env = ale_env
        self.num_envs = ale_env.num_envs
        self.single_observation_space = ale_env.single_observation_space
        self.single_action_space = ale_env.single_action_space
        self.observation_space = ale_env.observation_space
        self.action_space = ale_env.action_space
        self.metadata = {**ale_env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.episodic_life = episodic_life
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
        self._frames_in_episode[reset_mask] = self._stack  # ALE zero-pads a new game's stack itself
        return obs, info

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
        if game_over.any():
            final_obs[game_over] = info["final_obs"][game_over]
        if self.episodic_life:
            self._frames_in_episode = np.minimum(self._frames_in_episode + 1, self._stack)
            final_obs = self._hide_previous_lives(final_obs)
            lives = info["lives"].astype(np.int64)
            # After a game over `lives` already belongs to the new game, so only live games count here.
            life_lost = (lives < self._lives) & ~game_over
            self._lives = lives
            self._frames_in_episode[game_over] = self._stack
            self._frames_in_episode[life_lost] = 1
            obs = self._hide_previous_lives(obs)
            terminations = terminations | life_lost
        info["final_obs"] = final_obs
        info["_final_obs"] = terminations | truncations
        info["game_over"] = game_over
        return obs, rewards.astype(np.float32), terminations, truncations, info

    def _hide_previous_lives(self, stacks: np.ndarray) -> np.ndarray:
        """Zero the stack frames from before the current life began (ALE's reset convention)."""
        hidden = np.arange(self._stack) < self._stack - self._frames_in_episode[:, None]  # (num_envs, stack)
        if not hidden.any():
            return stacks
        stacks = stacks.copy()
        stacks[hidden] = 0
        return stacks

    def close_extras(self, **kwargs: Any) -> None:
        self.ale_env.close(**kwargs)


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
) -> AtariVectorEnv:
    """Build `num_envs` copies of `game` (an ALE ROM id such as `breakout` or `ms_pacman`).

    Frames: observations are (num_envs, frame_stack, frame_size, frame_size) uint8 grayscale, each agent
    step is `frame_skip` emulator frames with a max-pool over the last two. `max_episode_frames` counts
    emulator frames (108k = 30 minutes of play); `max_episode_steps`, if given, counts agent steps and
    replaces it (max_episode_steps * frame_skip frames). `sticky_actions_at` is `frame` (ALE: each frame
    repeats the previous frame's action with probability p) or `agent_step` (each agent step repeats the
    previous agent action with probability p). `seed` seeds this wrapper's RNG; `reset(seed=...)` reseeds it.
    """
    if game not in GAMES and game not in roms.get_all_rom_ids():
        raise ValueError(f"game={game!r} is not an ALE ROM id; allowed: snake_case ids such as {GAMES[:4]}")
    if sticky_actions_at not in STICKY_LEVELS:
        raise ValueError(f"sticky_actions_at={sticky_actions_at!r}; allowed: {STICKY_LEVELS}")
    if not 0.0 <= repeat_action_probability < 1.0:
        raise ValueError(f"repeat_action_probability={repeat_action_probability} must lie in [0, 1)")
    if max_episode_steps is not None:
        max_episode_frames = max_episode_steps * frame_skip
    per_frame_sticky = repeat_action_probability if sticky_actions_at == "frame" else 0.0
    ale_env = _ALEVectorEnv(
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
    return AtariVectorEnv(
        ale_env,
        episodic_life=episodic_life,
        agent_step_sticky_probability=repeat_action_probability - per_frame_sticky,
        seed=seed,
    )
