"""SAC speed on h1-walk at UTD 1: our Trainer vs a CleanRL-style loop, same network and budget.

Both loops: 1 env, one update per env step after `--learning-starts` random steps, batch 256, CleanRL's
256x256 MLPs (agent/net=mlp), policy_frequency 2. Candidates alternate, repeated (the CPU is shared);
medians of env steps/s over the whole run, warm-up included, and over the warm-up alone (env + replay).

    python -m bench.sac_speed            # the figures in bench/README.md
    python -m bench.sac_speed --quick    # smoke run
"""

from __future__ import annotations

import argparse

from bench.common import add_threads_option, loop_figures, machine, set_threads, table, time_trainer
from bench.reference import cleanrl_sac

TASK = "h1-walk"


def run_trainer(total_env_steps: int, learning_starts: int, precision: str) -> float:
    return time_trainer(
        "agent=sac", f"precision={precision}", "agent/net=mlp", f"env={TASK}", "env.num_envs=1", "replay_ratio=1",
        f"total_env_steps={total_env_steps}", f"learning_starts={learning_starts}",
        f"replay.capacity={total_env_steps}", "diagnostics.every_updates=0",
    )  # fmt: skip


def run_reference(total_env_steps: int, learning_starts: int) -> float:
    args = cleanrl_sac.Args(env_id=f"{TASK}-v0", total_timesteps=total_env_steps, learning_starts=learning_starts)
    return cleanrl_sac.run(args)["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budgets, one repeat")
    parser.add_argument("--env-steps", type=int, default=4_000, help="env steps per run")
    parser.add_argument("--learning-starts", type=int, default=1_000, help="random-action env steps first")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats per candidate")
    add_threads_option(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.quick:
        args.env_steps, args.learning_starts, args.repeats = 300, 256, 1

    print(f"machine: {machine()}")
    print(f"medians of {args.repeats} alternating repeats\n")
    print(table((f"loop, {args.env_steps} env steps, 1 env", "ours", "CleanRL-style", "ours / reference"),
                loop_figures(run_trainer, run_reference, total_env_steps=args.env_steps,
                             learning_starts=args.learning_starts, vector_step=1, ratio="UTD 1",
                             repeats=args.repeats)))


if __name__ == "__main__":
    main()
