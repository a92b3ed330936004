"""Steps per second of `H1Env` against bare `mj_step` on the same model, and of N-env vector envs.

    python -m envs.h1.benchmark [--task walk] [--steps 3000] [--num-envs 1 2 4]

The physics reference replays the env's own control sequence through `mj_step(nstep=10)` from the
same start states, so both sides integrate identical trajectories and contact counts.
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np

from envs.h1.env import FRAME_SKIP, H1Env
from envs.make import make_vector


def single_env_overhead(task: str, steps: int) -> tuple[float, float]:
    """(env steps/s, physics-only steps/s) over the same trajectory of uniform-random actions."""
    env = H1Env(task)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, env.model.nu)).astype(np.float32)
    env.reset(seed=0)
    starts, controls = {0: env.data.qpos.copy()}, np.empty((steps, env.model.nu))
    begin = time.perf_counter()
    for t, action in enumerate(actions):
        _, _, terminated, _, _ = env.step(action)
        controls[t] = env.data.ctrl
        if terminated:
            env.reset()
            starts[t + 1] = env.data.qpos.copy()
    env_seconds = time.perf_counter() - begin

    model, data = env.model, mujoco.MjData(env.model)
    begin = time.perf_counter()
    for t, ctrl in enumerate(controls):
        if t in starts:
            mujoco.mj_resetData(model, data)
            data.qpos[:] = starts[t]
            mujoco.mj_forward(model, data)
        data.ctrl[:] = ctrl
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
    physics_seconds = time.perf_counter() - begin
    return steps / env_seconds, steps / physics_seconds


def vector_steps_per_second(task: str, num_envs: int, steps: int) -> float:
    """Env steps/s (summed over envs) of make_vector with async workers (sync for one env)."""
    cfg = {"suite": "gymnasium", "id": f"h1-{task}-v0", "vectorization": "async"}
    envs = make_vector(cfg, num_envs=num_envs)
    rng = np.random.default_rng(0)
    envs.reset(seed=0)
    begin = time.perf_counter()
    for _ in range(steps // num_envs):
        envs.step(rng.uniform(-1, 1, envs.action_space.shape).astype(np.float32))
    seconds = time.perf_counter() - begin
    envs.close()
    return (steps // num_envs) * num_envs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="walk")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--num-envs", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()
    env_rate, physics_rate = single_env_overhead(args.task, args.steps)
    print(f"{args.task}: H1Env {env_rate:.0f} steps/s, mj_step only {physics_rate:.0f} steps/s, "
          f"overhead {physics_rate / env_rate - 1:.1%} of physics time")
    for num_envs in args.num_envs:
        print(f"{args.task}: {num_envs} envs -> {vector_steps_per_second(args.task, num_envs, args.steps):.0f} steps/s")


if __name__ == "__main__":
    main()
