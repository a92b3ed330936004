"""Env steps per second of the two Atari backends (random actions, no learning), and the cost of a snapshot.

    python bench/atari_backends.py [--game pong] [--num-envs 4] [--steps 2000]

`vector` (ale-py's C++ threads) is the reference; the ratios say what exact resume (`gymnasium`) costs.
Both step the same games with the same preprocessing (their outputs are bit-identical, tests/envs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.atari import make_atari_vector  # noqa: E402


def steps_per_second(env, steps: int) -> float:
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.single_action_space.n, (steps, env.num_envs))
    env.reset(seed=0)
    tick = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps * env.num_envs / (time.perf_counter() - tick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="pong")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2000, help="vector steps per backend")
    args = parser.parse_args()

    variants = {"vector": {}, "gymnasium sync": {"backend": "gymnasium"},
                "gymnasium async": {"backend": "gymnasium", "vectorization": "async"}}
    reference = None
    for name, kwargs in variants.items():
        env = make_atari_vector(args.game, args.num_envs, 0, **kwargs)
        sps = steps_per_second(env, args.steps)
        reference = reference or sps
        line = f"{name:16s} {sps:8.0f} env steps/s  ({sps / reference:.2f}x vector)"
        if kwargs:
            tick = time.perf_counter()
            blobs = env.get_attr("state_blob")
            seconds = time.perf_counter() - tick
            line += f"  snapshot {seconds * 1e3:.1f} ms, {sum(map(len, blobs)) / 1e3:.0f} KB"
        print(line, flush=True)
        env.close()


if __name__ == "__main__":
    main()
