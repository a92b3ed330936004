"""H1 env speed: one env against bare `mujoco.mj_step` on the same model, and N envs sync vs async.

The physics reference replays the env's own controls through
`mj_step(nstep=FRAME_SKIP)` from the same start states, so both integrate identical trajectories and
contacts; overhead = env time / physics time - 1 (target <= 15 %). Repeated, medians reported; the CPU
is shared, so the vector figures (which want one core per env) are lower bounds.

    python -m bench.h1_speed            # the figures in bench/README.md
    python -m bench.h1_speed --quick    # smoke run
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np

import envs  # noqa: F401  (registers the H1 tasks)
from bench.common import add_threads_option, machine, median, set_threads, table
from envs.h1.env import FRAME_SKIP, H1Env
from envs.make import make_vector

TARGET_OVERHEAD = 0.15


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


def vector_steps_per_second(task: str, num_envs: int, vectorization: str, steps: int) -> float:
    """Env steps/s summed over `num_envs` envs stepped with uniform random actions, after a reset."""
    vector_envs = make_vector({"suite": "gymnasium", "id": f"h1-{task}-v0", "vectorization": vectorization},
                              num_envs=num_envs)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps // num_envs, *vector_envs.action_space.shape)).astype(np.float32)
    vector_envs.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        vector_envs.step(action)
    seconds = time.perf_counter() - start
    vector_envs.close()
    return len(actions) * num_envs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps, one repeat, 1-2 envs")
    parser.add_argument("--task", default="walk")
    parser.add_argument("--steps", type=int, default=2_000, help="env steps per measurement")
    parser.add_argument("--num-envs", type=int, nargs="*", default=[2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    add_threads_option(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.quick:
        args.steps, args.num_envs, args.repeats = 100, [2], 1

    env_rates, physics_rates, overheads = [], [], []
    for _ in range(args.repeats):
        env_rate, physics_rate = single_env_overhead(args.task, args.steps)
        env_rates.append(env_rate)
        physics_rates.append(physics_rate)
        overheads.append(physics_rate / env_rate - 1)
    rows = [
        (f"1 env, H1Env (h1-{args.task})", f"{median(env_rates):.0f}", ""),
        ("1 env, bare mj_step, same trajectory", f"{median(physics_rates):.0f}", ""),
        ("1 env, overhead over physics", f"{100 * median(overheads):.1f} %",
         "met" if median(overheads) <= TARGET_OVERHEAD else "MISSED (target <= 15 %)"),
    ]
    for num_envs in args.num_envs:
        for vectorization in ("sync", "async"):
            rates = [vector_steps_per_second(args.task, num_envs, vectorization, args.steps)
                     for _ in range(args.repeats)]
            rows.append((f"{num_envs} envs, {vectorization}", f"{median(rates):.0f}",
                         f"{median(rates) / median(env_rates):.2f}x one env"))

    print(f"machine: {machine()}")
    print(f"medians of {args.repeats} repeats of {args.steps} env steps\n")
    print(table(("H1 env", "env steps/s", "note"), rows))


if __name__ == "__main__":
    main()
