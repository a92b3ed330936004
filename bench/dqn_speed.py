"""DQN speed at the FIRE paper's settings: our Trainer vs a CleanRL-style loop, and the learner vs its roofline.

Measured in one process, the two candidates alternating and repeated (the CPU is shared), medians reported:

1. end to end: env steps/s of `loop.runner.Trainer` (agent=dqn, env=atari, 4 envs, replay ratio 1, batch 32)
   and of bench/reference/cleanrl_dqn.py with the same settings, game (Breakout), network and budget;
2. actor only: the same two loops over their random-action warm-up (no updates), i.e. env + replay cost;
3. learner only: updates/s of one DQN update (batch 32, online forward + backward + target forward + Adam)
   on a fixed batch, ours (precision=fp32 and bf16) and the reference's, against the roofline of the
   machine: GEMM FLOP/s (torch.mm on large square matrices in fp32 and bf16, measured here) divided by
   the update's FLOP count.

Ours runs once per learner precision (`precision=fp32|bf16`, agents/precision.py; bf16 only on CPUs with
native bf16, see bench.common.LEARNER_PRECISIONS); the reference is fp32.

    python -m bench.dqn_speed            # the figures in bench/README.md
    python -m bench.dqn_speed --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.dqn import DQN
from bench.common import (
    LEARNER_PRECISIONS,
    add_threads_option,
    compose,
    interleaved,
    loop_figures,
    machine,
    median,
    set_threads,
    table,
    time_per_call,
    time_trainer,
)
from bench.reference import cleanrl_dqn
from replay.atari import AtariReplay

GAME = "breakout"
REFERENCE_ENV_ID = "BreakoutNoFrameskip-v4"
NUM_ENVS = 4
BATCH = 32
GEMM_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def run_trainer(total_env_steps: int, learning_starts: int, precision: str) -> float:
    """Paper DQN settings; the env protocol matches the reference's wrappers (no-op starts, episodic life,
    no sticky actions, no fire reset)."""
    return time_trainer(
        "agent=dqn", f"precision={precision}", "env=atari", f"env.game={GAME}", "env.kwargs.fire_reset=false",
        f"env.num_envs={NUM_ENVS}", "replay_ratio=1", f"replay.batch_size={BATCH}",
        f"total_env_steps={total_env_steps}", f"learning_starts={learning_starts}",
        f"replay.capacity={max(total_env_steps, 4 * BATCH)}",
    )  # fmt: skip


def run_reference(total_env_steps: int, learning_starts: int) -> float:
    args = cleanrl_dqn.Args(env_id=REFERENCE_ENV_ID, num_envs=NUM_ENVS, total_timesteps=total_env_steps,
                            learning_starts=learning_starts, buffer_size=max(total_env_steps, 4 * BATCH),
                            batch_size=BATCH)
    return cleanrl_dqn.run(args)["seconds"]


# --- learner and roofline ---------------------------------------------------------------------------
def forward_flops(network: nn.Module, obs: torch.Tensor) -> tuple[int, int]:
    """(FLOPs of one forward pass, FLOPs of its first layer), counting 2 per multiply-add of conv/linear."""
    counts: list[int] = []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * int(np.prod(module.kernel_size))
            counts.append(2 * output.numel() * per_output)
        elif isinstance(module, nn.Linear):
            counts.append(2 * output.numel() * module.in_features)

    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        network(obs)
    for hook in hooks:
        hook.remove()
    return sum(counts), counts[0]


def update_flops(network: nn.Module, obs: torch.Tensor) -> int:
    """Online forward + backward (2x forward, minus the input gradient of the first layer, which nothing
    needs) + the target network's forward on next_obs. Adam and elementwise ops are not counted."""
    forward, first_layer = forward_flops(network, obs)
    return forward + (2 * forward - first_layer) + forward


def gemm_flops_per_second(size: int, calls: int, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / time_per_call(lambda: torch.mm(a, b), calls, warmup=1)


def filled_replay(capacity: int, seed: int = 0) -> AtariReplay:
    replay = AtariReplay(capacity, NUM_ENVS, seed=seed)
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 256, (NUM_ENVS, 4, 84, 84), dtype=np.uint8)
    zeros = np.zeros(NUM_ENVS, dtype=bool)
    for _ in range(capacity // NUM_ENVS):
        replay.add(obs, rng.integers(0, 4, NUM_ENVS), rng.normal(size=NUM_ENVS), obs, zeros, zeros)
    return replay


def learner_figures(calls: int, repeats: int) -> list[tuple]:
    obs_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    agents = {}
    for precision in LEARNER_PRECISIONS:
        torch.manual_seed(0)
        agents[precision] = DQN(obs_space, gym.spaces.Discrete(4), "cpu", precision=precision,
                                **compose("agent=dqn", "env=atari")["agent"])
    replay = filled_replay(4 * BATCH * 8)
    batch = replay.sample(BATCH)

    reference_q = cleanrl_dqn.QNetwork(4)
    reference_target = cleanrl_dqn.QNetwork(4)
    reference_optimizer = torch.optim.Adam(reference_q.parameters(), lr=6.25e-5, eps=1.5e-4)
    actions = batch.actions.unsqueeze(1)

    def reference_update():
        with torch.no_grad():
            target_max, _ = reference_target(batch.next_obs).max(dim=1)
            td_target = batch.rewards + 0.99 * target_max * batch.discounts
        old_val = reference_q(batch.obs).gather(1, actions).squeeze()
        loss = nn.functional.smooth_l1_loss(td_target, old_val)
        reference_optimizer.zero_grad()
        loss.backward()
        reference_optimizer.step()

    candidates = {f"ours {p}": (lambda a=agent: time_per_call(lambda: a.update(batch, updates=0, env_steps=0), calls))
                  for p, agent in agents.items()}
    candidates["reference"] = lambda: time_per_call(reference_update, calls)
    for p in LEARNER_PRECISIONS:
        candidates[f"gemm {p}"] = lambda d=GEMM_DTYPES[p]: 1.0 / gemm_flops_per_second(2048, 4, d)
    seconds = interleaved(candidates, repeats)

    flops = update_flops(agents["fp32"].q_network, batch.obs)
    rate = {name: 1.0 / median(values) for name, values in seconds.items()}
    roofline = {p: rate[f"gemm {p}"] / flops for p in LEARNER_PRECISIONS}
    rows = [("FLOPs per update", f"{flops / 1e9:.2f} G", "", "")]
    for p in LEARNER_PRECISIONS:
        rows += [(f"{p} GEMM (torch.mm 2048^2)", f"{rate[f'gemm {p}'] / 1e9:.1f} GFLOP/s", "", ""),
                 (f"roofline updates/s at {p} GEMM rate", f"{roofline[p]:.1f}", "", "")]
    reference = rate["reference"]
    for p in LEARNER_PRECISIONS:
        ours = rate[f"ours {p}"]
        rows.append((f"learner updates/s, ours {p}", f"{ours:.1f}", f"{ours / reference:.2f}x reference",
                     f"{ours / roofline[p]:.2f} of its roofline"))
    rows.append(("learner updates/s, reference (fp32)", f"{reference:.1f}", "",
                 f"{reference / roofline['fp32']:.2f} of the fp32 roofline"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budgets, one repeat")
    parser.add_argument("--env-steps", type=int, default=2_000, help="env steps per end-to-end run")
    parser.add_argument("--learning-starts", type=int, default=1_000, help="random-action env steps first")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats per candidate")
    parser.add_argument("--skip-loop", action="store_true", help="learner and roofline figures only")
    add_threads_option(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.quick:
        args.env_steps, args.learning_starts, args.repeats = 160, 128, 1
    calls = 3 if args.quick else 20

    print(f"machine: {machine()}")
    print(f"medians of {args.repeats} alternating repeats\n")
    print(table(("learner (batch 32, Nature CNN)", "value", "ratio", "vs roofline"),
                learner_figures(calls, args.repeats)))
    if not args.skip_loop:
        print()
        print(table((f"loop, {args.env_steps} env steps, 4 envs", "ours", "CleanRL-style", "ours / reference"),
                    loop_figures(run_trainer, run_reference, total_env_steps=args.env_steps,
                             learning_starts=args.learning_starts, vector_step=NUM_ENVS, ratio="RR 1",
                             repeats=args.repeats)))


if __name__ == "__main__":
    main()
