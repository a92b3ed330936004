"""Torch CPU thread settings for training: per-call time of SAC, DQN and FIRE at 1 and 2 threads, alone and
beside a competing busy process, against `threads: auto`, the default of configs/config.yaml.

Each setting runs in its own process (OpenMP's wait policy is fixed when torch loads), the settings
alternate round by round, and every figure is a median over rounds. The "busy" condition starts one
`while True: pass` process beside the measured one, the usual case on a laptop or shared node.
Every setting runs each update workload for UPDATE_SECONDS (sustained load, as in training); under
`auto` the updates go through loop.threads' tuner, fresh as at the start of a run, so its time per call
includes timing both counts and any retry of the slower one; an agent whose updates differ in their bits
between the counts on this CPU runs at 1 thread, as the loop's check before its first update decides. A
FIRE event runs at the count the tuner kept for that agent's updates, as in a run.

    python -m bench.threads            # the table in bench/README.md
    python -m bench.threads --rounds   # and every round's figures, with the count auto kept
    python -m bench.threads --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import contextmanager

from bench.common import machine, median, table

# name -> (torch threads or "auto", extra environment); train.py's default is the last
SETTINGS = {
    "1 thread": (1, {}),
    "2 threads (torch's default)": (2, {}),
    "2 threads, OMP_WAIT_POLICY=passive": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "auto (train.py)": ("auto", {}),
}
UPDATE_SECONDS = 12.0  # per update workload and setting
# workload -> calls per measurement; update workloads run at least UPDATE_SECONDS
WORKLOADS = {"SAC update, MLP 256x256": 1, "SAC update, SimBa": 1, "DQN update, Nature CNN": 1,
             "FIRE event, DQN": 3, "FIRE event, SimBa SAC": 1}


def measure(threads: int | str, calls_scale: float) -> dict[str, float]:
    """Seconds per call of each workload in this process (after one untimed call)."""
    import time

    import torch

    from bench.fire_speed import dqn_agent, dqn_batch, sac_batch, simba_sac
    from loop.threads import AUTO, ThreadTuner, auto_counts, updates_depend_on_threads  # first: MKL's mode

    dqn, dqn_b = dqn_agent(), dqn_batch()
    simba, sac_b = simba_sac(), sac_batch()
    mlp = simba_sac(net="mlp")
    # workload -> (call, the agent whose tuner sets its count under auto)
    calls = {"SAC update, MLP 256x256": (lambda: mlp.update(sac_b, updates=0, env_steps=0), "mlp"),
             "SAC update, SimBa": (lambda: simba.update(sac_b, updates=0, env_steps=0), "simba"),
             "DQN update, Nature CNN": (lambda: dqn.update(dqn_b, updates=0, env_steps=0), "dqn"),
             "FIRE event, DQN": (lambda: dqn.reinit("fire", {}, dqn_b), "dqn"),
             "FIRE event, SimBa SAC": (lambda: simba.reinit("fire", {}, sac_b), "simba")}
    agents = {"mlp": (mlp, sac_b), "simba": (simba, sac_b), "dqn": (dqn, dqn_b)}
    tuners = {agent: ThreadTuner(auto_counts()) for agent in agents} if threads == AUTO else {}
    for agent, tuner in list(tuners.items()):  # as the loop does before its first update
        if updates_depend_on_threads(*agents[agent], tuner.counts, updates=0, env_steps=0):
            tuners[agent] = None
    threads = 1 if threads == AUTO else threads  # the count of an agent auto keeps at 1
    seconds = {}
    for name, (fn, agent) in calls.items():
        tuner, update = tuners.get(agent), "update" in name
        torch.set_num_threads((tuner.kept or tuner.current) if tuner else threads)
        if name != "FIRE event, SimBa SAC":  # seconds per call; its first call is as warm as later ones
            fn()
        n, start = 0, time.perf_counter()
        while n < max(1, round(WORKLOADS[name] * calls_scale)) or (
                update and time.perf_counter() - start < UPDATE_SECONDS * calls_scale):
            tick = time.perf_counter()
            fn()
            if tuner and update:
                tuner.record(1, time.perf_counter() - tick)
            n += 1
        seconds[name] = (time.perf_counter() - start) / n
    for agent, tuner in tuners.items():  # what auto did: the count it kept and how often it switched
        seconds[f"tuner {agent}"] = f"kept {tuner.kept}, {tuner.switches} switches" if tuner else "1 (probe)"
    return seconds


def run_setting(name: str, calls_scale: float) -> dict[str, float]:
    threads, extra = SETTINGS[name]
    env = {**os.environ, **extra}
    out = subprocess.run([sys.executable, "-m", "bench.threads", "--worker", str(threads), "--scale", str(calls_scale)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


@contextmanager
def competitor(busy: bool):
    """One busy-looping process beside the measured one (or nothing)."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few calls, one round")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds per setting and condition")
    parser.add_argument("--rounds", action="store_true", help="also print every round's figures (drift vs choice)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(measure(args.worker if args.worker == "auto" else int(args.worker), args.scale)))
        return
    scale, repeats = (0.1, 1) if args.quick else (1.0, args.repeats)

    print(f"machine: {machine()}")
    print(f"medians of {repeats} alternating rounds; ms per call; (x) = time / best setting in that condition\n")
    rows = []
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for condition, busy in (("quiet", False), ("1 busy process", True)):
        results: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
        with competitor(busy):
            names = list(SETTINGS)
            for round_ in range(repeats):
                for name in names if round_ % 2 == 0 else names[::-1]:
                    results[name].append(run_setting(name, scale))
        for name in SETTINGS:
            medians[condition, name] = {w: median([r[w] for r in results[name]]) for w in WORKLOADS}
        print(f"{condition}: load average after: {os.getloadavg()[0]:.1f}")
        if args.rounds:
            for name in SETTINGS:
                for round_, figures in enumerate(results[name]):
                    print(f"  round {round_ + 1}, {name}: " + ", ".join(
                        f"{key} {value * 1e3:.1f}" if isinstance(value, float) else f"{key}: {value}"
                        for key, value in figures.items()))
    for workload in WORKLOADS:
        for condition in ("quiet", "1 busy process"):
            best = min(medians[condition, name][workload] for name in SETTINGS)
            rows.append((workload, condition, *(f"{medians[condition, name][workload] * 1e3:.1f} "
                                                f"({medians[condition, name][workload] / best:.2f}x)"
                                                for name in SETTINGS)))
    print(table(("workload", "condition", *SETTINGS), rows))
    worst = {name: max(medians[c, name][w] / min(medians[c, s][w] for s in SETTINGS)
                       for c in ("quiet", "1 busy process") for w in WORKLOADS) for name in SETTINGS}
    print("\nworst ratio to the best setting over all rows: "
          + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in worst.items()))


if __name__ == "__main__":
    main()
