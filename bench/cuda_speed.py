"""Learner speed on a GPU: SAC (MLP, SimBa) and DQN (Nature CNN) updates per second, eager against
`torch.compile`, and the time of one FIRE event, all with synchronised timing.

    python -m bench.cuda_speed                  # on a CUDA machine (bench/gpu.sh runs it)
    python -m bench.cuda_speed --device cpu --quick   # smoke run of the same code on a CPU

`torch.compile` wraps each agent's `update` as it is; a graph break or a compile failure is reported in
the table instead of stopping the others (the figure then says what failed).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from bench.common import machine, table, time_per_call
from bench.fire_speed import dqn_agent, dqn_batch, sac_batch, simba_sac


def updates_per_second(make_agent: Callable[[], object], batch, calls: int, device: torch.device,
                       compiled: bool) -> str:
    agent = make_agent()
    update = torch.compile(agent.update) if compiled else agent.update
    try:
        seconds = time_per_call(lambda: update(batch, updates=0, env_steps=0), calls, warmup=3, device=device)
    except Exception as exc:  # noqa: BLE001 (a compile failure is a figure of this table)
        return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    return f"{1 / seconds:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cuda_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="smoke run: few calls")
    args = parser.parse_args()
    device = torch.device(args.device)
    calls = 5 if args.quick else 200
    print(machine())
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}")
    name = str(device)
    workloads = {
        "SAC update, MLP 256x256 (batch 256)": (lambda: simba_sac("mlp", name), sac_batch(device=name)),
        "SAC update, SimBa (batch 256)": (lambda: simba_sac("simba", name), sac_batch(device=name)),
        "DQN update, Nature CNN (batch 32)": (lambda: dqn_agent(name), dqn_batch(device=name)),
    }
    rows = [(workload, updates_per_second(make, batch, calls, device, compiled=False),
             updates_per_second(make, batch, calls, device, compiled=True))
            for workload, (make, batch) in workloads.items()]
    print(table(["workload", "eager updates/s", "torch.compile updates/s"], rows))

    events = {"DQN.reinit('fire'), Nature CNN": (lambda: dqn_agent(name), dqn_batch(device=name)),
              "SAC.reinit('fire'), SimBa actor + 2 critics": (lambda: simba_sac("simba", name), sac_batch(device=name))}
    rows = []
    for event, (make, batch) in events.items():
        agent = make()
        seconds = time_per_call(lambda a=agent, b=batch: a.reinit("fire", {}, b), 1 if args.quick else 5,
                                warmup=1, device=device)
        rows.append((event, f"{seconds * 1e3:.1f}"))
    print(table(["FIRE event", "ms"], rows))


if __name__ == "__main__":
    main()
