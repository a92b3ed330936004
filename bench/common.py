"""Shared pieces of the benchmarks: interleaved repeated timing, medians, RSS, the machine line, tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from agents.precision import precisions_on

# Emulated bf16 is slower than fp32 (a SAC update ~10x on an AVX2 CPU) and train.py refuses it there.
LEARNER_PRECISIONS = precisions_on(torch.device("cpu"))


def interleaved(candidates: Mapping[str, Callable[[], float | None]], repeats: int) -> dict[str, list[float]]:
    """Run every candidate `repeats` times, alternating A B A B ... (the order flips each round).

    The CPU is shared with other jobs, so a slow spell hits both candidates of a round instead of one
    whole series. A candidate returns its own measurement (e.g. seconds of its timed part) or None, in
    which case its wall time is recorded.
    """
    results: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            value = candidates[name]()
            results[name].append(time.perf_counter() - start if value is None else value)
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def time_per_call(fn: Callable[[], object], calls: int, warmup: int = 2,
                  device: torch.device | None = None) -> float:
    """Median-free mean seconds per call of fn over `calls` calls after `warmup` untimed ones; on a CUDA
    `device`, drained before and after, so that queued kernels count."""
    def drain() -> None:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    drain()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    drain()
    return (time.perf_counter() - start) / calls


def rss_bytes() -> int:
    """Resident set size of this process (VmRSS in /proc/self/status, Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def machine() -> str:
    """One line naming the CPU, cores, load and library versions the figures were measured on."""
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    bf16 = "native bf16" if "bf16" in LEARNER_PRECISIONS else "no native bf16 (bf16 figures skipped)"
    return (f"{model}, {os.cpu_count()} cores ({torch.backends.cpu.get_cpu_capability()}, {bf16}), "
            f"load {load:.1f}, torch {torch.__version__} ({torch.get_num_threads()} threads)")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-markdown table, so the output can be pasted into bench/README.md."""
    cells = [[str(c) for c in headers]] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def compose(*overrides: str) -> dict:
    """The resolved config of `python train.py <overrides>`, validated like train.py does."""
    from loop.config import compose as compose_config
    from loop.config import validate

    cfg = compose_config(*overrides)
    validate(cfg)
    return cfg


def add_threads_option(parser) -> None:
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on a shared 2-core CPU, 2 threads spin "
                             "on each other and on other jobs; both candidates always get the same)")


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def time_trainer(*overrides: str) -> float:
    """Seconds of `Trainer.run()` for `python train.py <overrides>`, training steps only: the final
    evaluation and checkpoint are stubbed out (the CleanRL-style references have neither)."""
    import tempfile

    from loop.runner import Trainer

    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(compose(*overrides, "device=cpu", "quiet=true", f"run_dir={run_dir}"), Path(run_dir))
        trainer.evaluator.evaluate = lambda agent, env_steps: {}  # no evaluation episodes
        trainer.save_checkpoint = lambda: Path(run_dir)
        start = time.perf_counter()
        trainer.run()
        return time.perf_counter() - start


def loop_figures(run_ours: Callable[[int, int, str], float], run_reference: Callable[[int, int], float], *,
                 total_env_steps: int, learning_starts: int, vector_step: int, ratio: str,
                 repeats: int, precisions: Sequence[str] = LEARNER_PRECISIONS) -> list[tuple]:
    """Env steps/s of our loop and a reference loop: actor only (learning starts at the last vector step
    of `vector_step` env steps; ours in fp32, the precision only matters to updates), then end to end
    with updates at `ratio` from `learning_starts`, ours once per learner precision. The reference is
    always fp32 (CleanRL has no mixed precision). `run_ours(total_env_steps, learning_starts, precision)`
    and `run_reference(total_env_steps, learning_starts)` return seconds; candidates alternate, medians
    reported."""
    phases = (("actor only (warm-up, no updates)", total_env_steps - vector_step, ("fp32",)),
              (f"end to end, {ratio} (updates after {learning_starts} steps)", learning_starts, precisions))
    rows = []
    for phase, starts, phase_precisions in phases:
        candidates: dict[str, Callable[[], float]] = {
            precision: (lambda s=starts, p=precision: run_ours(total_env_steps, s, p))
            for precision in phase_precisions
        }
        candidates["reference"] = lambda s=starts: run_reference(total_env_steps, s)
        seconds = interleaved(candidates, repeats)
        reference = total_env_steps / median(seconds["reference"])
        for precision in phase_precisions:
            ours = total_env_steps / median(seconds[precision])
            rows.append((f"{phase}, ours {precision}: env steps/s", f"{ours:.1f}", f"{reference:.1f}",
                         f"{ours / reference:.2f}x"))
    return rows
