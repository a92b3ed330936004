"""FIRE speed: batched conv taps vs a per-tap loop, time to apply, and its share of a 1M-step run.

1. Batched vs per-tap: `fire.fire_conv` orthogonalises all spatial taps of a kernel in one batched
   Newton-Schulz call; the authors' code loops over taps in Python. Both are timed on the Nature CNN's
   three kernels (and checked to agree), alternating, medians.
2. Time to apply: `DQN.reinit("fire")` (the paper's DQN hybrid: convs orthogonalised, Linear layers reset,
   target synced, report computed), `fire.fire_` on the whole Q-network, and `SAC.reinit("fire")` on the
   SimBa actor + both critics (agent/net=simba, h1-walk's sizes).
3. Share of a run: one FIRE event against 1M updates (replay ratio 1, 1M env steps) of the measured update
   time. The update time is a lower bound on a run's time per env step, so the share is an upper bound.
   SimBa: `SAC.reinit("fire")` (actor and both critics orthogonalised, targets synced, optimisers and
   temperature reset) and `SAC.update` with agent/net=simba, batch 256.

    python -m bench.fire_speed            # the figures in bench/README.md
    python -m bench.fire_speed --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import fire
from agents.dqn import DQN
from agents.sac import SAC
from bench.common import add_threads_option, compose, interleaved, machine, median, set_threads, table, time_per_call
from fire.polar import newton_schulz
from replay.base import Batch

RUN_UPDATES = 1_000_000
H1_WALK_OBS, H1_ACTIONS = 51, 19


def per_tap_fire_conv(W: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """The authors' loop: each tap W[:, :, i, j] orthogonalised on its own, then the official scale."""
    d_out, d_in, kh, kw = W.shape
    Q = torch.empty_like(W)
    for i in range(kh):
        for j in range(kw):
            Q[:, :, i, j] = newton_schulz(W[:, :, i, j], iterations)
    return (math.sqrt(d_out / d_in) / (kh * kw)) * Q


def dqn_agent(device: str = "cpu") -> DQN:
    torch.manual_seed(0)
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    return DQN(space, gym.spaces.Discrete(4), device, **compose("agent=dqn", "env=atari")["agent"])


def dqn_batch(size: int = 32, device: str = "cpu") -> Batch:
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (size, 4, 84, 84), dtype=torch.uint8, generator=g)
    return _on(Batch(obs=obs, actions=torch.randint(0, 4, (size,), generator=g),
                     rewards=torch.randn(size, generator=g), next_obs=obs.roll(1, 0),
                     discounts=torch.full((size,), 0.99)), device)


def simba_sac(net: str = "simba", device: str = "cpu") -> SAC:
    """The FIRE paper's SimBa SAC (agent/net=simba, or another `net`) with h1-walk's observation and action sizes."""
    torch.manual_seed(0)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (H1_WALK_OBS,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (H1_ACTIONS,), np.float32)
    return SAC(obs_space, action_space, device, **compose("agent=sac", f"agent/net={net}", "env=h1-walk")["agent"])


def sac_batch(size: int = 256, device: str = "cpu") -> Batch:
    g = torch.Generator().manual_seed(0)
    return _on(Batch(obs=torch.randn(size, H1_WALK_OBS, generator=g),
                     actions=torch.rand(size, H1_ACTIONS, generator=g) * 2 - 1, rewards=torch.randn(size, generator=g),
                     next_obs=torch.randn(size, H1_WALK_OBS, generator=g), discounts=torch.full((size,), 0.99)),
               device)


def _on(batch: Batch, device: str) -> Batch:
    return Batch(**{name: getattr(batch, name).to(device) for name in Batch.__dataclass_fields__})


def batched_vs_per_tap(calls: int, repeats: int) -> list[tuple]:
    convs = [m for m in dqn_agent().q_network.modules() if isinstance(m, nn.Conv2d)]
    kernels = [conv.weight.detach().clone() for conv in convs]
    for W in kernels:
        torch.testing.assert_close(fire.fire_conv(W), per_tap_fire_conv(W), rtol=1e-4, atol=1e-6)
    rows = []
    totals = {"batched": 0.0, "per-tap": 0.0}
    for W in kernels:
        seconds = interleaved({
            "batched": lambda W=W: time_per_call(lambda: fire.fire_conv(W), calls),
            "per-tap": lambda W=W: time_per_call(lambda: per_tap_fire_conv(W), calls),
        }, repeats)  # fmt: skip
        batched, looped = median(seconds["batched"]), median(seconds["per-tap"])
        totals["batched"] += batched
        totals["per-tap"] += looped
        taps = W.shape[2] * W.shape[3]
        rows.append((f"conv {tuple(W.shape)} ({taps} taps)", f"{batched * 1e3:.2f}", f"{looped * 1e3:.2f}",
                     f"{looped / batched:.1f}x"))
    rows.append(("Nature CNN, all convs", f"{totals['batched'] * 1e3:.2f}", f"{totals['per-tap'] * 1e3:.2f}",
                 f"{totals['per-tap'] / totals['batched']:.1f}x"))
    return rows


def apply_and_share(calls: int, repeats: int) -> list[tuple]:
    """One FIRE event is seconds on the SimBa critics (10 NS steps on 2048 x 512 weights): few calls."""
    agent, batch = dqn_agent(), dqn_batch()
    simba, simba_batch = simba_sac(), sac_batch()
    seconds = interleaved({
        "dqn_reinit": lambda: time_per_call(lambda: agent.reinit("fire", {}, batch), calls, warmup=1),
        "dqn_fire_all": lambda: time_per_call(lambda: fire.fire_(agent.q_network), calls, warmup=1),
        "simba_reinit": lambda: time_per_call(lambda: simba.reinit("fire", {}, simba_batch), 1, warmup=0),
        "dqn_update": lambda: time_per_call(lambda: agent.update(batch, updates=0, env_steps=0), calls),
        "simba_update": lambda: time_per_call(lambda: simba.update(simba_batch, updates=0, env_steps=0), calls,
                                              warmup=1),
    }, repeats)  # fmt: skip
    m = {name: median(values) for name, values in seconds.items()}
    dqn_run, simba_run = RUN_UPDATES * m["dqn_update"], RUN_UPDATES * m["simba_update"]

    def share(event: float, run: float) -> str:
        return f"{100 * event / run:.5f} %"

    return [
        ("DQN.reinit('fire') (convs FIRE, Linear reset, report)", f"{m['dqn_reinit'] * 1e3:.1f}",
         f"{m['dqn_update'] * 1e3:.1f}", f"{dqn_run / 3600:.1f}", share(m["dqn_reinit"], dqn_run)),
        ("fire_ on the whole Q-network (convs + Linear)", f"{m['dqn_fire_all'] * 1e3:.1f}", "", "",
         share(m["dqn_fire_all"], dqn_run)),
        ("SAC.reinit('fire'), SimBa actor + 2 critics (h1-walk sizes)", f"{m['simba_reinit'] * 1e3:.1f}",
         f"{m['simba_update'] * 1e3:.1f}", f"{simba_run / 3600:.1f}", share(m["simba_reinit"], simba_run)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few calls, one repeat")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repeats per candidate")
    add_threads_option(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    calls, repeats = (2, 1) if args.quick else (10, args.repeats)

    print(f"machine: {machine()}")
    print(f"medians of {repeats} alternating repeats of {calls} calls\n")
    print(table(("Newton-Schulz, 10 steps", "batched ms", "per-tap loop ms", "speed-up"),
                batched_vs_per_tap(calls, repeats)))
    print()
    print(table(("one FIRE event", "ms", "update ms", "1M updates (h)", "share of a 1M-step run"),
                apply_and_share(max(calls // 2, 1), min(repeats, 3))))


if __name__ == "__main__":
    main()
