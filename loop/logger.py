"""Run output: TensorBoard scalars (x-axis = env steps), the progress display, and printed events."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

from loop.progress import Progress


class RunLogger:
    """One TensorBoard writer and one progress display for a run; open for the length of a `with` block.

    On resume, `purge_step` drops events a killed run wrote after its last checkpoint, so curves
    neither repeat nor skip steps. `quiet` (sweeps) replaces the bar with one line per evaluation.
    """

    def __init__(self, run_dir: Path, total_env_steps: int, start_env_steps: int, *, quiet: bool,
                 purge_step: int | None = None):
        # Imported here, once the envs are built: TensorBoard's ~15 MB would otherwise sit in memory
        # through the H1 model's compile, whose scratch sets the run's peak RSS (bench/h1_memory.py).
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
        self.progress = Progress(total_env_steps, start_env_steps, quiet=quiet)

    def __enter__(self) -> RunLogger:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scalars(self, values: Mapping[str, float], env_steps: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, float(value), env_steps)

    def text(self, tag: str, text: str) -> None:
        self.writer.add_text(tag, text, 0)

    def message(self, text: str) -> None:
        tqdm.write(text)

    def close(self) -> None:
        self.progress.close()
        self.writer.close()
