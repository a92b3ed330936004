"""Frame-efficient Atari replay: one new 84x84 frame per transition, stacks rebuilt at sample time.

Layout. Each env owns a ring of frames (its stream, in time order) and a ring of transitions. A
transition stores the absolute position `frame_pos` of its observation's newest frame in that env's
stream and `history`, how many earlier frames of the same episode precede it (clipped to stack - 1).
The observation stack is frames[frame_pos - stack + 1 .. frame_pos] with the frames from before the
episode's start set to zero, which is ALE's own reset convention, or to the episode's first frame with
frame_stack_start="repeat" (the env's option of the same name, envs/atari). Its successor ends at
frame_pos + 1: the next transition's frame while the episode runs, or, at an episode end, the true final
frame taken from `next_obs` and written to its own slot, so a truncated transition bootstraps from the
right stack. The frame ring is therefore a little longer than the transition ring (`extra_frames`
slots per env for those final frames); if episodes are so short that it wraps first, the oldest
transitions simply stop being sampleable.

Sampling is vectorised index arithmetic: pick (env, transition) pairs uniformly over the sampleable
transitions, then gather a (batch, stack) block of frames with one fancy index.

n-step returns: rewards[i] + gamma * rewards[i+1] + ... summed over up to n steps, stopping at the
episode end; discounts = gamma**k * (1 - terminated), with k the steps summed. Rewards are raw: an agent
that clips rewards per step should use n_step=1 (clipping an n-step sum is not the same thing).

Checkpoints. `state_dict` holds the arrays zstd-compressed (multi-threaded, in chunks): Atari frames are
large flat areas. bench/checkpoint_size.py, 1M transitions of random play of 4 games on 2 cores: 7.2 GB in
RAM, 54 MiB on disk, written in 4.8 s and read back in 7.5 s; uncompressed torch.save (protocol 2, the
loop's) writes 8.2 KB per transition, 150x more, 25x slower. Compressing, rather than memory-mapped
.npy files beside the checkpoint, keeps a checkpoint one self-contained file written atomically by the
loop, keeps the last K of them affordable on disk, and needs no file management here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import zstandard

from replay.base import Batch, lazy_zeros, require_memory

BYTES_PER_FRAME_PIXEL = 1  # uint8
ZSTD_LEVEL = 3  # zstd's default: on Atari frames ~as fast as level 1, smaller (bench/checkpoint_size.py)
CHUNK_BYTES = 64 * 2**20  # compressed piece size; bounds the extra memory of a load to one piece


def pack_array(array: np.ndarray) -> dict[str, Any]:
    """A C-contiguous array as zstd-compressed chunks of its bytes (all cores compress each chunk).

    Chunks are uint8 tensors, not `bytes`: torch.save pickles with protocol 2, which writes `bytes` (and
    numpy arrays) as latin-1 text, ~1.5x larger and slow; tensors go to the file as raw storage."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1)
    flat = array.reshape(-1).view(np.uint8)
    chunks = [torch.frombuffer(bytearray(compressor.compress(flat[i : i + CHUNK_BYTES])), dtype=torch.uint8)
              for i in range(0, flat.size, CHUNK_BYTES)]
    return {"shape": array.shape, "dtype": array.dtype.str, "zstd_chunks": chunks}


def unpack_into(packed: dict[str, Any], out: np.ndarray, name: str) -> None:
    """Decompress `pack_array`'s result into the preallocated `out` (same shape and dtype)."""
    if tuple(packed["shape"]) != out.shape or np.dtype(packed["dtype"]) != out.dtype:
        raise ValueError(f"replay state {name!r}: {packed['dtype']}{tuple(packed['shape'])}, "
                         f"not {out.dtype.str}{out.shape}")
    flat = out.reshape(-1).view(np.uint8)
    decompressor = zstandard.ZstdDecompressor()
    start = 0
    for chunk in packed["zstd_chunks"]:
        piece = np.frombuffer(decompressor.decompress(chunk.numpy()), dtype=np.uint8)
        flat[start : start + piece.size] = piece
        start += piece.size
    if start != flat.size:
        raise ValueError(f"replay state {name!r}: {start} bytes, not {flat.size}")


class AtariReplay:
    """Uniform replay over `num_envs` interleaved Atari streams storing single frames.

    capacity: transitions in total, split evenly over the envs (the FIRE paper: 1M = 4 envs x 250k).
    extra_frame_fraction: frame-ring slots beyond one per transition, for the final frames stored at
    episode ends (0.02 covers episodes of 50+ steps on average).
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        *,
        gamma: float = 0.99,
        n_step: int = 1,
        frame_shape: tuple[int, int] = (84, 84),
        frame_stack: int = 4,
        frame_stack_start: str = "zeros",
        extra_frame_fraction: float = 0.02,
        device: str | torch.device = "cpu",
        seed: int = 0,
        check_memory: bool = True,
    ):
        if capacity < num_envs or capacity % num_envs:
            raise ValueError(f"capacity={capacity} must be a positive multiple of num_envs={num_envs}")
        if n_step < 1:
            raise ValueError(f"n_step={n_step} must be >= 1")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma={gamma} must lie in [0, 1]")
        self.num_envs = num_envs
        self.gamma = gamma
        self.n_step = n_step
        self.frame_stack = frame_stack
        self.repeat_first_frame = frame_stack_start == "repeat"
        self.frame_shape = tuple(frame_shape)
        self.device = torch.device(device)
        self.transitions_per_env = capacity // num_envs
        extra_frames = int(np.ceil(extra_frame_fraction * self.transitions_per_env))
        # + frame_stack: room for the history frames of the oldest sampleable transition
        self.frames_per_env = self.transitions_per_env + extra_frames + frame_stack

        needed = self.nbytes_for(num_envs, self.transitions_per_env, self.frames_per_env, self.frame_shape)
        if check_memory:
            require_memory(f"AtariReplay(capacity={capacity})", needed)

        shape = (num_envs, self.transitions_per_env)
        self.frames = lazy_zeros((num_envs, self.frames_per_env, *self.frame_shape), dtype=np.uint8)
        self.frame_pos = lazy_zeros(shape, dtype=np.int64)  # absolute position in the env's frame stream
        self.history = lazy_zeros(shape, dtype=np.uint8)  # earlier frames of the same episode, <= stack - 1
        self.actions = lazy_zeros(shape, dtype=np.uint8)
        self.rewards = lazy_zeros(shape, dtype=np.float32)
        self.terminated = lazy_zeros(shape, dtype=bool)
        self.episode_end = lazy_zeros(shape, dtype=bool)  # terminated or truncated

        self.frames_written = np.zeros(num_envs, dtype=np.int64)
        self.transitions_written = np.zeros(num_envs, dtype=np.int64)
        self.oldest_sampleable = np.zeros(num_envs, dtype=np.int64)  # absolute transition index
        self.last_episode_end = np.full(num_envs, -1, dtype=np.int64)  # absolute transition index
        self.episode_history = np.zeros(num_envs, dtype=np.int64)  # frames so far in the running episode
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def nbytes_for(num_envs: int, transitions_per_env: int, frames_per_env: int, frame_shape) -> int:
        per_transition = 8 + 1 + 1 + 4 + 1 + 1  # frame_pos, history, action, reward, terminated, end
        frame_bytes = int(np.prod(frame_shape)) * BYTES_PER_FRAME_PIXEL
        return num_envs * (frames_per_env * frame_bytes + transitions_per_env * per_transition)

    @property
    def nbytes(self) -> int:
        return self.nbytes_for(self.num_envs, self.transitions_per_env, self.frames_per_env, self.frame_shape)

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminations: np.ndarray,
        truncations: np.ndarray,
    ) -> None:
        """Store one vector step; obs/next_obs are (num_envs, stack, H, W) uint8, the rest (num_envs,)."""
        envs = np.arange(self.num_envs)
        ended = np.asarray(terminations, dtype=bool) | np.asarray(truncations, dtype=bool)
        slot = self.transitions_written % self.transitions_per_env

        pos = self.frames_written
        self.frames[envs, pos % self.frames_per_env] = obs[:, -1]
        self.frame_pos[envs, slot] = pos
        self.history[envs, slot] = np.minimum(self.episode_history, self.frame_stack - 1)
        self.actions[envs, slot] = actions
        self.rewards[envs, slot] = rewards
        self.terminated[envs, slot] = terminations
        self.episode_end[envs, slot] = ended
        # The successor's newest frame: the next add's obs while the episode runs; stored now at its end.
        ended_envs = envs[ended]
        self.frames[ended_envs, (pos[ended] + 1) % self.frames_per_env] = next_obs[ended, -1]

        self.frames_written += 1 + ended
        self.episode_history = np.where(ended, 0, self.episode_history + 1)
        self.last_episode_end = np.where(ended, self.transitions_written, self.last_episode_end)
        self.transitions_written += 1
        self._drop_overwritten()

    def end_episodes(self, next_obs: np.ndarray) -> None:
        """Close each env's running episode after its newest transition, as a truncation whose successor is
        `next_obs` (num_envs, stack, H, W): the observation the loop held when the checkpoint was taken.

        A run branched from a checkpoint (load_checkpoint=) starts fresh episodes; without this cut their
        first frames would be stacked onto frames stored before the branch, and the newest stored transition
        would lead into the new episode's first frame."""
        running = np.flatnonzero(self.episode_history > 0)
        newest = self.transitions_written[running] - 1
        self.episode_end[running, newest % self.transitions_per_env] = True
        pos = self.frames_written[running]
        self.frames[running, pos % self.frames_per_env] = next_obs[running, -1]
        self.frames_written[running] = pos + 1
        self.episode_history[running] = 0
        self.last_episode_end[running] = newest
        self._drop_overwritten()

    def _drop_overwritten(self) -> None:
        """Advance `oldest_sampleable` past transitions whose slot or stack frames were overwritten."""
        envs = np.arange(self.num_envs)
        self.oldest_sampleable = np.maximum(
            self.oldest_sampleable, self.transitions_written - self.transitions_per_env
        )
        oldest_kept_frame = self.frames_written - self.frames_per_env
        while True:
            slot = self.oldest_sampleable % self.transitions_per_env
            first_frame = self.frame_pos[envs, slot] - self.history[envs, slot]
            lost = (first_frame < oldest_kept_frame) & (self.oldest_sampleable < self.transitions_written)
            if not lost.any():
                return
            self.oldest_sampleable += lost

    def _sampleable_range(self) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) per env in absolute transition indices: all n-step successors must be stored."""
        complete = np.maximum(self.last_episode_end + 1, self.transitions_written - self.n_step)
        return self.oldest_sampleable, np.maximum(complete, self.oldest_sampleable)

    def __len__(self) -> int:
        lo, hi = self._sampleable_range()
        return int((hi - lo).sum())

    def _stacks(self, env: np.ndarray, newest_pos: np.ndarray, history: np.ndarray) -> np.ndarray:
        """(B, stack, H, W) uint8: the frames ending at `newest_pos`; before the episode's start zeros, or its
        first frame repeated."""
        offsets = np.arange(1 - self.frame_stack, 1)  # (stack,)
        if self.repeat_first_frame:
            return self.frames[env[:, None], (newest_pos[:, None] + np.maximum(offsets, -history[:, None]))
                               % self.frames_per_env]
        stack = self.frames[env[:, None], (newest_pos[:, None] + offsets) % self.frames_per_env]
        before_start = offsets < -history[:, None]  # (B, stack)
        stack[before_start] = 0
        return stack

    def sample(self, batch_size: int) -> Batch:
        lo, hi = self._sampleable_range()
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            raise ValueError("sample() on an AtariReplay with no sampleable transitions")
        draw = self.rng.integers(0, total, size=batch_size)
        ends = np.cumsum(counts)
        env = np.searchsorted(ends, draw, side="right")
        first = lo[env] + draw - (ends[env] - counts[env])  # absolute transition index
        return self.batch_at(env, first)

    def batch_at(self, env: np.ndarray, first: np.ndarray) -> Batch:
        """The (n-step) transitions starting at absolute transition indices `first` of streams `env`."""
        batch_size = len(env)
        steps = first[:, None] + np.arange(self.n_step)  # (B, n)
        slots = steps % self.transitions_per_env
        ended = self.episode_end[env[:, None], slots]
        # Step k is summed while no earlier step of the window ended the episode.
        ended_before = np.cumsum(ended, axis=1)[:, :-1] > 0
        summed = np.concatenate([np.ones((batch_size, 1), bool), ~ended_before], axis=1)  # (B, n)
        k = summed.sum(axis=1)  # steps summed, 1..n
        returns = (self.rewards[env[:, None], slots] * summed * self.gamma ** np.arange(self.n_step)).sum(1)
        last = slots[np.arange(batch_size), k - 1]
        discounts = self.gamma**k * ~self.terminated[env, last]

        first_slot = slots[:, 0]
        first_history = self.history[env, first_slot].astype(np.int64)
        obs = self._stacks(env, self.frame_pos[env, first_slot], first_history)
        next_history = np.minimum(self.history[env, last].astype(np.int64) + 1, self.frame_stack - 1)
        next_obs = self._stacks(env, self.frame_pos[env, last] + 1, next_history)
        to = self._to_device
        return Batch(
            obs=to(obs),
            actions=to(self.actions[env, first_slot].astype(np.int64)),
            rewards=to(returns.astype(np.float32)),
            next_obs=to(next_obs),
            discounts=to(discounts.astype(np.float32)),
        )

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)

    _ARRAYS = ("frames", "frame_pos", "history", "actions", "rewards", "terminated", "episode_end")
    _COUNTERS = (
        "frames_written",
        "transitions_written",
        "oldest_sampleable",
        "last_episode_end",
        "episode_history",
    )

    def state_dict(self) -> dict[str, Any]:
        """Arrays compressed (see the module docstring), counters and the sampling RNG as they are."""
        state: dict[str, Any] = {name: pack_array(getattr(self, name)) for name in self._ARRAYS}
        state.update({name: getattr(self, name).copy() for name in self._COUNTERS})
        state["rng"] = self.rng.bit_generator.state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self._ARRAYS:
            unpack_into(state[name], getattr(self, name), name)
        for name in self._COUNTERS:
            current = getattr(self, name)
            if current.shape != state[name].shape:
                raise ValueError(f"replay state {name!r}: shape {state[name].shape}, not {current.shape}")
            current[...] = state[name]
        self.rng.bit_generator.state = state["rng"]
