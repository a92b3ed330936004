"""MinAtar (Young & Tian 2019, PyPI `minatar`) as gymnasium envs: single games and a continual sequence.

MinAtar's five games are 10x10 Atari miniatures whose state is a (10, 10, channels) bool map, one channel
per kind of object. Here an observation is that map channels-first as uint8 0/1, (channels, 10, 10), the
layout the conv nets and replay expect; Box(0, 1), so frame-efficient Atari replay (pixel stacks in
0..255) is never picked for it. Units: one env step = one MinAtar frame = one agent step (no frame skip).

* Actions: MinAtar's minimal action set per game by default (breakout 3, asterix 5, freeway 3,
  seaquest 6, space_invaders 4), or all 6 (no-op, left, up, right, down, fire) with full_action_set.
* Sticky actions (MinAtar's own, default p = 0.1: the previous action repeats, drawn once per frame) and
  difficulty ramping (default on) are MinAtar's options, passed through.
* Seeding: reset(seed=s) seeds the game's RandomState with s, as MinAtar's own gym env does; that one
  generator draws both the game's randomness and the sticky actions.
* Snapshots: the whole game (positions, timers, its RandomState, the last action for stickiness) is plain
  Python state, so envs.snapshot.Checkpointable pickles it exactly.
* No score normalisation: MinAtar documents no random or human reference scores.

Importing this module registers `minatar-<game>-v0` (e.g. minatar-space_invaders-v0) and
`minatar-continual-v0` with gymnasium. `ContinualMinAtarEnv` plays a sequence of games in one env for
continual-learning protocols; see its docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register

GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
NUM_ACTIONS = 6  # MinAtar's full action set: no-op, left, up, right, down, fire
GRID = 10  # MinAtar's screens are 10x10
CONTINUAL_ID = "minatar-continual-v0"
RENDER_SCALE = 16  # 10 cells -> 160 px, a multiple of 16 as video codecs want
# One colour per channel index for rgb_array rendering (black background); 10 covers every game.
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], np.uint8)


def env_id(game: str) -> str:
    return f"minatar-{game}-v0"


def num_channels(game: str) -> int:
    """The game's state channels (breakout 4, asterix 4, freeway 7, seaquest 10, space_invaders 6)."""
    from minatar import Environment

    return Environment(game).n_channels


def _check_games(games: Sequence[str], key: str) -> None:
    unknown = [g for g in games if g not in GAMES]
    if unknown or not games:
        raise ValueError(f"{key}={list(games)!r}: unknown or empty; allowed: {', '.join(GAMES)}")


class MinAtarEnv(gym.Env):
    """One MinAtar game: uint8 (channels, 10, 10) observations, Discrete actions (see the module docstring).

    `channels` zero-pads the observation to that many channels (the continual env's common shape);
    None keeps the game's own count.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, game: str, sticky_action_prob: float = 0.1, difficulty_ramping: bool = True,
                 full_action_set: bool = False, channels: int | None = None, render_mode: str | None = None):
        from minatar import Environment

        _check_games([game], "env.game")
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise ValueError(f"env.kwargs.sticky_action_prob={sticky_action_prob!r} must be in [0, 1]")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r} is unknown; allowed: None, rgb_array")
        self.game_name = game
        self.game = Environment(game, sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping)
        self.game_channels = self.game.n_channels
        channels = self.game_channels if channels is None else channels
        if channels < self.game_channels:
            raise ValueError(f"channels={channels} is below {game}'s {self.game_channels} state channels")
        self.action_set = tuple(range(NUM_ACTIONS)) if full_action_set else tuple(self.game.minimal_action_set())
        self.action_space = gym.spaces.Discrete(len(self.action_set))
        self.observation_space = gym.spaces.Box(0, 1, (channels, GRID, GRID), np.uint8)
        self.render_mode = render_mode
        self.seeded = False

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, np.uint8)
        obs[: self.game_channels] = self.game.state().transpose(2, 0, 1)
        return obs

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed)
        elif not self.seeded:  # MinAtar's generators start unseeded; draw from gymnasium's entropy-seeded one
            self.game.seed(int(self.np_random.integers(2**31)))
        self.seeded = True
        self.game.reset()
        return self._obs(), {}

    def step(self, action):
        reward, terminated = self.game.act(self.action_set[int(action)])
        return self._obs(), float(reward), bool(terminated), False, {}

    def render(self) -> np.ndarray | None:
        """(160, 160, 3) uint8: each occupied cell in its top channel's colour, empty cells black."""
        if self.render_mode != "rgb_array":
            return None
        state = self.game.state()  # (10, 10, channels) bool
        top = np.where(state.any(axis=2), state.shape[2] - 1 - np.argmax(state[:, :, ::-1], axis=2), -1)
        image = np.where((top >= 0)[..., None], PALETTE[np.maximum(top, 0)], 0).astype(np.uint8)
        return image.repeat(RENDER_SCALE, 0).repeat(RENDER_SCALE, 1)


class ContinualMinAtarEnv(gym.Env):
    """A sequence of MinAtar games in one env, switching game every `switch_steps` of its own env steps.

    All games share one observation space, (max channels over the games, 10, 10) with the missing channels
    zero, and MinAtar's full action set of 6. After the last game the sequence starts again at the first.
    Every switch starts a fresh episode of the next game; each game keeps its own MinAtar instance, so its
    generator and sticky-action memory carry on from its previous turn.

    Switching: the step that completes a multiple of `switch_steps` ends the current episode (truncated,
    unless it terminated) and advances `game_index`; the next reset() starts the next game. `steps` counts
    this env's steps since its seeded reset (reset(seed=...) restarts the sequence at game 0, or at
    options["game_index"], e.g. to evaluate one game); the autoresets between episodes keep counting. The
    builder (envs.make) sets switch_steps = env.switch_env_steps / num_envs, so every sub-env of a vector
    env switches on the same vector step, the one where the loop's env_steps (num_envs x steps) reaches a
    multiple of switch_env_steps.

    info["game_index"] (int) and info["game"] (name) name the game of the step just taken, or of the
    episode reset() started. Under a vector env's SAME_STEP autoreset the values of an episode that ended
    on this step are in info["final_info"]; the top-level ones are already the next episode's.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, games: Sequence[str], switch_steps: int, sticky_action_prob: float = 0.1,
                 difficulty_ramping: bool = True, render_mode: str | None = None):
        _check_games(list(games), "env.games")
        if int(switch_steps) < 1:
            raise ValueError(f"switch_steps={switch_steps!r} must be a positive number of env steps")
        channels = max(num_channels(g) for g in games)
        self.games = [MinAtarEnv(g, sticky_action_prob, difficulty_ramping, full_action_set=True, channels=channels,
                                 render_mode=render_mode) for g in games]
        self.switch_steps = int(switch_steps)
        self.observation_space = self.games[0].observation_space
        self.action_space = self.games[0].action_space
        self.render_mode = render_mode
        self.steps = 0
        self.game_index = 0

    def _info(self) -> dict[str, Any]:
        return {"game_index": self.game_index, "game": self.games[self.game_index].game_name}

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:  # every game gets its own stream, all derived from the one seed
            for i, game in enumerate(self.games):
                game.reset(seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]))
        start = (options or {}).get("game_index", 0 if seed is not None else None)
        if start is not None:  # restart the sequence at that game's turn
            if start not in range(len(self.games)):
                raise ValueError(f"options['game_index']={start!r}; allowed: 0..{len(self.games) - 1}")
            self.game_index, self.steps = int(start), int(start) * self.switch_steps
        obs, _ = self.games[self.game_index].reset()
        return obs, self._info()

    def step(self, action):
        obs, reward, terminated, truncated, _ = self.games[self.game_index].step(action)
        info = self._info()
        self.steps += 1
        if self.steps % self.switch_steps == 0:
            truncated = not terminated
            self.game_index = (self.game_index + 1) % len(self.games)
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        return self.games[self.game_index].render()


def register_envs() -> None:
    for game in GAMES:
        if env_id(game) not in gym.registry:
            register(env_id(game), entry_point="envs.minatar:MinAtarEnv", kwargs={"game": game})
    if CONTINUAL_ID not in gym.registry:
        register(CONTINUAL_ID, entry_point="envs.minatar:ContinualMinAtarEnv")


def vector_kwargs(cfg: Mapping[str, Any], num_envs: int) -> dict[str, Any]:
    """gym.make kwargs for an `env` config of suite minatar built as `num_envs` sub-envs."""
    kwargs = dict(cfg.get("kwargs") or {})
    if cfg["id"] != CONTINUAL_ID:
        return kwargs
    switch_env_steps = int(cfg["switch_env_steps"])
    if switch_env_steps % num_envs:
        raise ValueError(f"env.switch_env_steps={switch_env_steps} must be a multiple of the number of envs "
                         f"({num_envs}) so that all envs switch game on the same env step")
    return {**kwargs, "games": list(cfg["games"]), "switch_steps": switch_env_steps // num_envs}


register_envs()
