"""Atari replay memory and sampling: bytes per transition by RSS, and latency of a batch of 32.

Our frame-efficient replay (replay/atari.py) is filled to capacity with 4 envs, episodes of
`--episode-steps` agent steps (each end stores one extra final frame), and the process's resident set
growth is divided by the capacity. Zero-filled numpy arrays are not resident until written, so only RSS
after filling counts every byte really used; the array sizes are printed next to it.

The reference is the SB3-style buffer CleanRL uses (bench/reference/cleanrl_dqn.py: 4-frame stacks for
obs and next_obs), measured the same way at `--reference-capacity` (its 1M size, ~56 GB, does not fit).
Sampling latency: median over alternating rounds of `sample(32)`, to torch tensors, both buffers.

    python -m bench.replay_memory            # 1M capacity (~7 GB resident; takes a minute)
    python -m bench.replay_memory --quick    # 8k capacity
"""

from __future__ import annotations

import argparse
import gc

import gymnasium as gym
import numpy as np

from bench.common import add_threads_option, interleaved, machine, median, rss_bytes, set_threads, table, time_per_call
from bench.reference.cleanrl_dqn import ReplayBuffer
from replay.atari import AtariReplay

NUM_ENVS = 4
STACK_SHAPE = (4, 84, 84)
TARGET_BYTES = 7_300  # issue 7: <= 7.3 KB per transition at 1M


def observation_pool(size: int, seed: int = 0) -> list[np.ndarray]:
    """A few random (num_envs, 4, 84, 84) uint8 stacks, reused so that filling is cheap."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (NUM_ENVS, *STACK_SHAPE), dtype=np.uint8) for _ in range(size)]


def fill(add, vector_steps: int, episode_steps: int) -> None:
    pool = observation_pool(8)
    actions = np.zeros(NUM_ENVS, dtype=np.int64)
    rewards = np.ones(NUM_ENVS, dtype=np.float32)
    no_end = np.zeros(NUM_ENVS, dtype=bool)
    # Envs end their episodes at staggered steps, as real envs do.
    for step in range(vector_steps):
        ended = (step + np.arange(NUM_ENVS) * (episode_steps // NUM_ENVS)) % episode_steps == episode_steps - 1
        add(pool[step % 8], actions, rewards, pool[(step + 1) % 8], ended, no_end)


def measure_ours(capacity: int, episode_steps: int) -> tuple[AtariReplay, int]:
    gc.collect()
    before = rss_bytes()
    replay = AtariReplay(capacity, NUM_ENVS, check_memory=False)
    fill(replay.add, capacity // NUM_ENVS + capacity // episode_steps, episode_steps)
    return replay, rss_bytes() - before


def measure_reference(capacity: int, episode_steps: int) -> tuple[ReplayBuffer, int]:
    gc.collect()
    before = rss_bytes()
    space = gym.spaces.Box(0, 255, STACK_SHAPE, np.uint8)
    buffer = ReplayBuffer(capacity, space, NUM_ENVS, device="cpu")

    def add(obs, actions, rewards, next_obs, terminations, _truncations):
        buffer.add(obs, next_obs, actions, rewards, terminations)

    fill(add, capacity // NUM_ENVS, episode_steps)
    return buffer, rss_bytes() - before


def reference_array_bytes(buffer: ReplayBuffer) -> int:
    arrays = (buffer.observations, buffer.next_observations, buffer.actions, buffer.rewards, buffer.dones)
    return sum(array.nbytes for array in arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8k capacity, one sampling round")
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--reference-capacity", type=int, default=20_000)
    parser.add_argument("--episode-steps", type=int, default=1_000, help="agent steps per episode while filling")
    parser.add_argument("--repeats", type=int, default=5, help="alternating sampling rounds")
    add_threads_option(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.quick:
        args.capacity, args.reference_capacity, args.repeats = 8_000, 2_000, 1
    calls = 50 if args.quick else 500

    reference, reference_rss = measure_reference(args.reference_capacity, args.episode_steps)
    ours, ours_rss = measure_ours(args.capacity, args.episode_steps)
    seconds = interleaved({
        "ours": lambda: time_per_call(lambda: ours.sample(32), calls),
        "reference": lambda: time_per_call(lambda: reference.sample(32), calls),
    }, args.repeats)  # fmt: skip
    ours_bytes, reference_bytes = ours_rss / args.capacity, reference_rss / args.reference_capacity
    ours_us, reference_us = 1e6 * median(seconds["ours"]), 1e6 * median(seconds["reference"])

    print(f"machine: {machine()}")
    print(f"episodes of {args.episode_steps} agent steps; sampling: medians of {args.repeats} alternating "
          f"rounds of {calls} batches of 32\n")
    print(table(
        ("replay", "capacity", "RSS bytes/transition", "array bytes/transition", "sample(32) us"),
        [("ours (replay/atari.py)", args.capacity, f"{ours_bytes:.0f}", f"{ours.nbytes / args.capacity:.0f}",
          f"{ours_us:.0f}"),
         ("SB3-style (CleanRL)", args.reference_capacity, f"{reference_bytes:.0f}",
          f"{reference_array_bytes(reference) / args.reference_capacity:.0f}",
          f"{reference_us:.0f}")],
    ))  # fmt: skip
    verdict = "met" if ours_bytes <= TARGET_BYTES else "MISSED"
    print(f"\nours: {ours_bytes / 1e3:.2f} KB/transition (target <= {TARGET_BYTES / 1e3} KB: {verdict}); "
          f"{reference_bytes / ours_bytes:.1f}x less than the reference; "
          f"sampling {reference_us / ours_us:.2f}x the reference's speed")


if __name__ == "__main__":
    main()
