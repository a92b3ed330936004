"""One Atari game with ale-py's vector-env preprocessing redone in Python, so its state can be saved exactly.

`ALEPreprocessing` wraps ale-py's single-game gymnasium env (`frameskip=1`, grayscale screens) and
reproduces, step for step, what ale-py 0.12's C++ `PreprocessedEnv` does: seeding (ALE `random_seed` =
the reset seed, ROM reloaded), FIRE at a game's start, no-op starts drawn from a 32-bit Mersenne Twister
seeded like `std::mt19937` with libstdc++'s `uniform_int_distribution`, frame skip with a max-pool over the
last two frames, OpenCV's INTER_AREA resize in float32, a zero-padded frame stack and a time limit counted
in emulator frames. Same seed and actions give the C++ env's observations bit for bit (tests/envs).

What it adds is `state_blob`: the emulator (ALE `cloneState(include_rng=True)`, which holds the sticky-
action RNG too) and every buffer of the preprocessing, so a run can stop and resume mid-episode.
"""

from __future__ import annotations

import pickle
from functools import cache
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from ale_py import roms
from ale_py.env import AtariEnv

_UINT32 = 0xFFFFFFFF


@cache
def _area_weights(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's INTER_AREA table for one axis: (target, taps) source indices and float32 weights.

    Each target pixel averages the source interval [t * scale, (t + 1) * scale); partial source pixels
    at its ends weigh by their overlap. Unused taps have weight 0 (adding 0.0 leaves a float sum as is).
    """
    scale = source / target
    taps: list[list[tuple[int, np.float32]]] = []
    for t in range(target):
        start, stop = t * scale, (t + 1) * scale
        cell = min(scale, source - start)
        first, last = int(np.ceil(start)), min(int(np.floor(stop)), source - 1)
        first = min(first, last)
        row = []
        if first - start > 1e-3:
            row.append((first - 1, np.float32((first - start) / cell)))
        row += [(s, np.float32(1.0 / cell)) for s in range(first, last)]
        if stop - last > 1e-3:
            row.append((last, np.float32(min(stop - last, 1.0, cell) / cell)))
        taps.append(row)
    width = max(len(row) for row in taps)
    index = np.zeros((target, width), dtype=np.int64)
    weight = np.zeros((target, width), dtype=np.float32)
    for t, row in enumerate(taps):
        index[t, : len(row)] = [s for s, _ in row]
        weight[t, : len(row)] = [w for _, w in row]
    return index, weight


def area_resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 -> (height, width) uint8 exactly as `cv2.resize(..., interpolation=cv2.INTER_AREA)`
    computes it for a downscale by a non-integer factor (the ALE vector env's resize): float32 sums in
    OpenCV's order, horizontal taps first, then vertical, rounded half to even."""
    col_index, col_weight = _area_weights(frame.shape[1], width)
    row_index, row_weight = _area_weights(frame.shape[0], height)
    taps = frame.astype(np.float32)[:, col_index] * col_weight  # (H, width, taps)
    rows = taps[:, :, 0]
    for k in range(1, taps.shape[2]):
        rows = rows + taps[:, :, k]
    taps = rows[row_index] * row_weight[:, :, None]  # (height, taps, width)
    out = taps[:, 0]
    for k in range(1, taps.shape[1]):
        out = out + taps[:, k]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def cpp_uniform_int(bit_generator: np.random.MT19937, n: int) -> int:
    """A draw of libstdc++'s `std::uniform_int_distribution<int>(0, n - 1)` from a 32-bit mt19937
    (Lemire's multiply-and-reject), so no-op counts follow the C++ env's for the same seed."""
    product = int(bit_generator.random_raw()) * n
    if product & _UINT32 < n:
        threshold = (2**32 - n) % n
        while product & _UINT32 < threshold:
            product = int(bit_generator.random_raw()) * n
    return product >> 32


def seeded_mt19937(seed: int) -> np.random.MT19937:
    """numpy's MT19937 seeded as `std::mt19937(seed)` is (Matsumoto and Nishimura's init_genrand)."""
    bit_generator = np.random.MT19937()
    bit_generator._legacy_seeding(seed)
    return bit_generator


class ALEPreprocessing(gym.Wrapper):
    """ale-py's vector-env preprocessing for one game; observations (frame_stack, size, size) uint8.

    `env` must be ale-py's AtariEnv made with frameskip=1, obs_type="grayscale" and no ALE frame limit
    (`make_atari_env` does it). Rewards are raw sums over the skipped frames; `info` holds the C++ env's
    int32 `lives`, `frame_number` and `episode_frame_number`.
    """

    def __init__(
        self,
        env: gym.Env,
        game: str,
        *,
        frame_skip: int,
        frame_size: int,
        frame_stack: int,
        noop_max: int,
        fire_reset: bool,
        max_episode_frames: int,
    ):
        super().__init__(env)
        self.rom_path = roms.get_rom_path(game)
        self.frame_skip = frame_skip
        self.frame_size = frame_size
        self.noop_max = noop_max
        self.max_episode_frames = max_episode_frames
        meanings = env.unwrapped.get_action_meanings()
        self.fire_action = meanings.index("FIRE") if fire_reset and "FIRE" in meanings else None
        self.observation_space = gym.spaces.Box(0, 255, (frame_stack, frame_size, frame_size), np.uint8)

        # The state beyond the emulator's, all of it in `state_blob`:
        self.noop_rng = seeded_mt19937(5489)  # std::mt19937's default seed
        # The last two frames of a step, (2, 210, 160); [0] is max-pooled in place.
        self.screens = np.zeros((2, *env.observation_space.shape), dtype=np.uint8)
        self.stack = np.zeros(self.observation_space.shape, dtype=np.uint8)  # oldest first
        self.episode_frames = 0

    @property
    def ale(self) -> ale_py.ALEInterface:
        return self.env.unwrapped.ale

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:  # as the C++ env: ALE reseeded and the ROM reloaded, no-op RNG reseeded
            self.ale.setInt("random_seed", int(seed))
            self.ale.loadROM(self.rom_path)
            self.noop_rng = seeded_mt19937(int(seed))
        screen, _ = self.env.reset()
        if self.fire_action is not None:
            screen, *_ = self.env.step(self.fire_action)
        # The C++ env draws 0..noop_max-1 no-op frames (single frames, not agent steps), FIRE counting as one.
        noops = cpp_uniform_int(self.noop_rng, max(self.noop_max, 1)) - (self.fire_action is not None)
        for _ in range(noops):
            screen, _, game_over, *_ = self.env.step(0)
            if game_over:
                screen, _ = self.env.reset()
        self.screens[0] = screen
        self.screens[1] = 0
        self.stack[:] = 0
        self._push_screen()
        self.episode_frames = 0
        return self.stack.copy(), self._info()

    def step(self, action: int):
        reward, game_over = 0.0, False
        for frames_left in range(self.frame_skip, 0, -1):
            screen, frame_reward, game_over, *_ = self.env.step(action)
            reward += frame_reward
            self.episode_frames += 1
            if game_over or self.episode_frames >= self.max_episode_frames:
                # The C++ env stops before grabbing this frame: the pooled screens may be the previous step's.
                break
            if frames_left <= 2:
                self.screens[frames_left - 1] = screen
        self._push_screen()
        truncated = self.episode_frames >= self.max_episode_frames and not game_over
        return self.stack.copy(), reward, game_over, truncated, self._info()

    def _info(self) -> dict[str, np.int32]:
        return {"lives": np.int32(self.ale.lives()), "frame_number": np.int32(self.ale.getFrameNumber()),
                "episode_frame_number": np.int32(self.ale.getEpisodeFrameNumber())}

    def _push_screen(self) -> None:
        np.maximum(self.screens[0], self.screens[1], out=self.screens[0])  # in place, as the C++ env does
        self.stack[:-1] = self.stack[1:]
        self.stack[-1] = area_resize(self.screens[0], self.frame_size, self.frame_size)

    @property
    def state_blob(self) -> bytes:
        return pickle.dumps({
            "ale": self.ale.cloneState(include_rng=True).serialize(),
            "noop_rng": self.noop_rng.state,
            "screens": self.screens.copy(),
            "stack": self.stack.copy(),
            "episode_frames": self.episode_frames,
        })

    @state_blob.setter
    def state_blob(self, blob: bytes) -> None:
        state = pickle.loads(blob)
        self.ale.restoreState(ale_py.ALEState(state["ale"]))
        self.noop_rng.state = state["noop_rng"]
        self.screens[...] = state["screens"]
        self.stack[...] = state["stack"]
        self.episode_frames = state["episode_frames"]


def make_atari_env(
    game: str,
    *,
    repeat_action_probability: float,
    full_action_space: bool,
    frame_skip: int,
    frame_size: int,
    frame_stack: int,
    noop_max: int,
    fire_reset: bool,
    max_episode_frames: int,
) -> ALEPreprocessing:
    """ale-py's gymnasium env for `game` (an ALE ROM id) under `ALEPreprocessing`. Sticky actions are ALE's
    own, per emulator frame, drawn from ALE's RNG (seeded at reset like the C++ env's)."""
    env = AtariEnv(
        game,
        frameskip=1,
        obs_type="grayscale",
        repeat_action_probability=repeat_action_probability,
        full_action_space=full_action_space,
        max_num_frames_per_episode=None,  # frames are counted here, as the C++ env counts them
    )
    return ALEPreprocessing(env, game, frame_skip=frame_skip, frame_size=frame_size, frame_stack=frame_stack,
                            noop_max=noop_max, fire_reset=fire_reset, max_episode_frames=max_episode_frames)
