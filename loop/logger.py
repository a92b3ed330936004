"""Run output: TensorBoard scalars (x-axis = env steps), a progress bar, and printed events."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


class RunLogger:
    """One TensorBoard writer and one progress display for a run.

    On resume, `purge_step` drops events a killed run wrote after its last checkpoint, so curves
    neither repeat nor skip steps. `quiet` (sweeps) replaces the bar with one line per evaluation.
    """

    def __init__(self, run_dir: Path, total_env_steps: int, start_env_steps: int, *, quiet: bool,
                 purge_step: int | None = None):
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
        self.quiet = quiet
        self.total = total_env_steps
        self.start_env_steps = start_env_steps
        self.started = time.perf_counter()
        self.bar = tqdm(total=total_env_steps, initial=start_env_steps, unit="step", unit_scale=True,
                        dynamic_ncols=True, smoothing=0.05, mininterval=0.5, disable=quiet, desc="env steps")
        self.postfix: dict[str, str] = {}

    def scalars(self, values: Mapping[str, float], env_steps: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, float(value), env_steps)

    def text(self, tag: str, text: str) -> None:
        self.writer.add_text(tag, text, 0)

    def advance(self, env_steps: int) -> None:
        if self.quiet:  # sweeps: no bar to draw, and this runs every vector step
            return
        self.bar.set_postfix(self.postfix, refresh=False)
        self.bar.update(env_steps - self.bar.n)  # redraws at most every mininterval

    def line(self, env_steps: int) -> None:
        """The quiet-mode progress line: env steps, SPS since start, latest figures, ETA."""
        if not self.quiet:
            return
        elapsed = time.perf_counter() - self.started
        rate = (env_steps - self.start_env_steps) / max(elapsed, 1e-9)
        eta = (self.total - env_steps) / max(rate, 1e-9)
        figures = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(f"{env_steps}/{self.total} env steps  {rate:.0f} SPS  {figures}  ETA {eta / 60:.1f} min", flush=True)

    def message(self, text: str) -> None:
        tqdm.write(text)

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
