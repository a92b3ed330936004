"""`threads: auto`: the torch CPU thread count, 1 or 2, whichever trains faster right now.

Why measure: torch's default (a thread per core, OpenMP workers that spin while they wait) is the fastest
setting on an idle machine and up to 2x slower beside one busy process; one thread is the reverse, and no
fixed setting is within 10 % of the best in both conditions (bench/threads.py, bench/README.md).

How: the loop reports the seconds of its ordinary learning iterations (acting and updates; evaluations,
checkpoints, priming and interventions are left out). The tuner times each count over windows of at
least `window_seconds`, keeps the faster, and tries the other again after `gap` windows. Every retry
costs a window at the slower count's speed, so the gap starts at 16 and doubles each time the choice holds
(up to `max_gap`: the slower count then costs ~1/64 of the run); the other count is tried at once when
the kept one slows by more than `slowdown` (another process started: 2 spinning threads then run 2.5-3.3x
slower in bench/threads.py, while windows of an undisturbed run vary by up to 1.3x).

Results never depend on the count: every update, intervention and diagnostic of the shipped presets is
bit-identical at 1 and 2 threads (tests/loop/test_threads.py). That takes MKL's strict reproducibility
mode (`MKL_CBWR=AUTO,STRICT`, set on import; its cost was within timing noise), without which a GEMM
with a small side (a 6-action head's gradient) is split differently at 2 threads; LAPACK calls at one
thread (fire/lapack.py); sums over large tensors taken as row sums first (fire.diagnostics); and, on CPUs
with AVX-512, the convolution gradients that oneDNN splits by thread computed at one thread
(agents/conv.py). Above 2 threads results differ, so `auto` never goes above 2 and `threads=N` pins N.

Whatever this list misses on some CPU is caught before the first update: the loop checks whether one
update of its agent gives the same bits at both counts (`updates_depend_on_threads`); where it does not,
`auto` keeps 1 thread for the run, the count that is never pathological beside other work, so that a
run's results never depend on the machine's load and a resumed run continues bit for bit.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

# MKL reads this at its first call, so it is set when the loop is imported, before any matmul.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

import torch  # noqa: E402

from fire.lapack import torch_threads  # noqa: E402

AUTO = "auto"
COUNTS = (1, 2)  # the counts whose results are bit-identical (see the module docstring)


def auto_counts() -> tuple[int, ...]:
    """The counts `auto` chooses from on this machine: 1 and 2 where 2 cores are ours to use, else 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return COUNTS if cores >= 2 else (1,)


def updates_depend_on_threads(agent: Any, batch: Any, counts: tuple[int, ...], **update_args: int) -> bool:
    """Whether `agent.update(batch, **update_args)` from the agent's current state gives different bits at
    the counts. Each count updates its own copy of the agent (one copy at a time, so a large agent costs
    one more of itself in memory), from the same global RNG state, which is restored afterwards, as is the
    thread count: the run itself is not changed."""
    digests = set()
    for count in counts:
        probe = copy.deepcopy(agent)
        with torch_threads(count), torch.random.fork_rng(devices=[]):
            probe.update(batch, **update_args)
        digests.add(state_digest(probe.state_dict()))
        del probe
    return len(digests) > 1


def state_digest(state: Any) -> str:
    """A hash of every tensor's dtype, shape and bits and every other value in a (nested) state dict."""
    h = hashlib.sha256()

    def add(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().contiguous()
            h.update(f"{value.dtype}{tuple(value.shape)}".encode())
            h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, Mapping):
            for key in sorted(value, key=str):
                h.update(str(key).encode())
                add(value[key])
        elif isinstance(value, (list, tuple)):
            for item in value:
                add(item)
        else:
            h.update(repr(value).encode())

    add(state)
    return h.hexdigest()


class ThreadTuner:
    """Chooses the thread count from measured seconds per env step (see the module docstring)."""

    def __init__(self, counts: tuple[int, ...], *, window_seconds: float = 1.0, first_gap: int = 16,
                 max_gap: int = 64, slowdown: float = 1.5, set_threads: Callable[[int], None] = torch.set_num_threads):
        self.counts = counts
        self.window_seconds = window_seconds
        self.first_gap, self.max_gap, self.slowdown = first_gap, max_gap, slowdown
        self.set_threads = set_threads
        self.pace: dict[int, float] = {}  # count -> seconds per env step of its latest window
        self.kept: int | None = None  # the count chosen by the last comparison (None until both are timed)
        self.gap = first_gap
        self.windows_left = 0  # windows of the kept count before the other is tried again
        self.switches = 0
        self.current = counts[-1]
        self._seconds, self._env_steps = 0.0, 0
        set_threads(self.current)

    def record(self, env_steps: int, seconds: float) -> None:
        """One ordinary learning iteration: `env_steps` done in `seconds` at the current count."""
        self._seconds += seconds
        self._env_steps += env_steps
        if self._seconds < self.window_seconds or self._env_steps == 0:
            return
        pace = self._seconds / self._env_steps
        self._seconds, self._env_steps = 0.0, 0
        self._end_window(pace)

    def _end_window(self, pace: float) -> None:
        slowed = self.current == self.kept and pace > self.slowdown * self.pace[self.current]
        self.pace[self.current] = pace
        untimed = [count for count in self.counts if count not in self.pace]
        if untimed:
            self._use(untimed[0])
        elif self.current != self.kept or self.kept is None:  # the other count was just timed: compare
            best = min(self.counts, key=self.pace.__getitem__)
            self.gap = min(2 * self.gap, self.max_gap) if best == self.kept else self.first_gap
            self.kept, self.windows_left = best, self.gap
            self._use(best)
        else:
            self.windows_left -= 1
            if slowed:
                self.gap = self.first_gap
            if slowed or self.windows_left <= 0:
                others = [count for count in self.counts if count != self.kept]
                if others:
                    self._use(others[0])

    def _use(self, count: int) -> None:
        if count != self.current:
            self.current = count
            self.switches += 1
            self.set_threads(count)
