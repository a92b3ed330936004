"""FIRE speed: batched conv taps vs a per-tap loop, time to apply, and its share of a 1M-step run.

1. Batched vs per-tap: `fire.fire_conv` orthogonalises all spatial taps of a kernel in one batched
   Newton-Schulz call; the authors' code loops over taps in Python. Both are timed on the Nature CNN's
   three kernels (and checked to agree), alternating, medians.
2. Time to apply: `DQN.reinit("fire")` (the paper's DQN hybrid: convs orthogonalised, Linear layers reset,
   target synced, report computed), `fire.fire_` on the whole Q-network, and `fire.fire_` on the SimBa
   actor + both critics (layer sizes of spec fire.md section 4.4 for h1-walk).
3. Share of a run: one FIRE event against 1M updates (replay ratio 1, 1M env steps) of the measured update
   time. The update time is a lower bound on a run's time per env step, so the share is an upper bound.
   The SimBa update is a stand-in until SAC lands: two critics' forward + backward on (obs, action),
   the target critics' forward, the actor's forward + backward through a critic, AdamW, batch 256.

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


def dqn_agent() -> DQN:
    torch.manual_seed(0)
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    return DQN(space, gym.spaces.Discrete(4), "cpu", **compose("agent=dqn", "env=atari")["agent"])


def dqn_batch(size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (size, 4, 84, 84), dtype=torch.uint8, generator=g)
    return Batch(obs=obs, actions=torch.randint(0, 4, (size,), generator=g), rewards=torch.randn(size, generator=g),
                 next_obs=obs.roll(1, 0), discounts=torch.full((size,), 0.99))


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class SimbaSized(nn.Module):
    """Linear layers of the SimBa actor and twin critics for h1-walk (spec fire.md 4.4), no LayerNorms:
    FIRE touches only the Linear weights, so their shapes are what its cost depends on."""

    def __init__(self, obs_dim: int = H1_WALK_OBS, action_dim: int = H1_ACTIONS):
        super().__init__()
        self.actor = nn.ModuleDict({
            "embed": nn.Linear(obs_dim, 128),
            "block": mlp([128, 512, 128]),
            "head": nn.Linear(128, 2 * action_dim),  # mean and log-std
        })  # fmt: skip
        self.critics = nn.ModuleList(
            nn.Sequential(nn.Linear(obs_dim + action_dim, 512), mlp([512, 2048, 512]), mlp([512, 2048, 512]),
                          nn.Linear(512, 1))
            for _ in range(2)
        )

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.actor["embed"](obs)
        h = h + self.actor["block"](h)
        mean, _log_std = self.actor["head"](h).chunk(2, dim=-1)
        return torch.tanh(mean)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, actions], dim=-1)
        return torch.stack([critic(x) for critic in self.critics])


def simba_update_fn(batch_size: int = 256):
    """A SimBa-sized SAC update stand-in (see the module docstring); returns a zero-argument callable."""
    net, target = SimbaSized(), SimbaSized()
    target.requires_grad_(False)
    critic_optimizer = torch.optim.AdamW(net.critics.parameters(), lr=1e-4, weight_decay=1e-2)
    actor_optimizer = torch.optim.AdamW(net.actor.parameters(), lr=1e-4, weight_decay=1e-2)
    obs, next_obs = torch.randn(batch_size, H1_WALK_OBS), torch.randn(batch_size, H1_WALK_OBS)
    actions, rewards = torch.rand(batch_size, H1_ACTIONS) * 2 - 1, torch.randn(batch_size, 1)

    def update() -> None:
        actor_loss = -net.q_values(obs, net.act(obs)).min(0).values.mean()
        actor_optimizer.zero_grad()
        actor_loss.backward()
        actor_optimizer.step()
        with torch.no_grad():
            target_q = rewards + 0.99 * target.q_values(next_obs, net.act(next_obs)).min(0).values
        critic_loss = (net.q_values(obs, actions) - target_q).square().mean()
        critic_optimizer.zero_grad()
        critic_loss.backward()
        critic_optimizer.step()

    return update


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
    simba = SimbaSized()
    simba_update = simba_update_fn()
    seconds = interleaved({
        "dqn_reinit": lambda: time_per_call(lambda: agent.reinit("fire", {}, batch), calls, warmup=1),
        "dqn_fire_all": lambda: time_per_call(lambda: fire.fire_(agent.q_network), calls, warmup=1),
        "simba_fire": lambda: time_per_call(lambda: fire.fire_(simba), 1, warmup=0),
        "dqn_update": lambda: time_per_call(lambda: agent.update(batch), calls),
        "simba_update": lambda: time_per_call(simba_update, calls, warmup=1),
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
        ("fire_ on SimBa actor + 2 critics (h1-walk sizes)", f"{m['simba_fire'] * 1e3:.1f}",
         f"{m['simba_update'] * 1e3:.1f}", f"{simba_run / 3600:.1f}", share(m["simba_fire"], simba_run)),
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
