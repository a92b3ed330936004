"""`threads: auto`: torch's CPU threads follow the cores other processes leave idle.

Torch's default (one intra-op thread per core) is fastest on an idle machine and 4-18x slower when one
other busy process shares the cores: its OpenMP workers spin-wait for a core that is taken
(bench/threads.py). One thread is fastest on a busy machine and ~2x slower on an idle one. `auto`
measures the CPU time other processes used on this process's cores over the last window (/proc/stat
minus our own CPU time) and sets torch's thread count to the cores they left idle, re-checked every
`every_s` seconds. Thread counts do not change the results of this project's updates (tested).
"""

from __future__ import annotations

import math
import os
import time

import torch


def _busy_seconds(cpus: set[int]) -> float | None:
    """CPU seconds spent not idle on `cpus` since boot (all processes), or None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f if line.startswith("cpu") and line[3].isdigit()]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = 0
    for name, *fields in lines:
        if int(name[3:]) in cpus:
            values = [int(v) for v in fields]
            busy += sum(values[:8]) - values[3] - values[4]  # all time but idle and iowait (guest is in user)
    return busy / ticks


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class AutoThreads:
    """Sets torch's intra-op threads to the idle cores: now (after a `probe_s` sample) and on `adjust()`."""

    def __init__(self, every_s: float = 10.0, probe_s: float = 0.25):
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
        self.most = torch.get_num_threads()  # torch's own default: one per physical core it may use
        self.every_s = every_s
        self.window = self._sample()
        if self.window[0] is not None:
            time.sleep(probe_s)  # idle here, so the sample sees only the other processes
        self.adjust(force=True)

    def _sample(self) -> tuple[float | None, float, float]:
        return _busy_seconds(self.cpus), _own_seconds(), time.monotonic()

    def others_busy_cores(self) -> float | None:
        """Cores other processes kept busy since the last window started; starts a new window."""
        busy0, own0, wall0 = self.window
        self.window = busy1, own1, wall1 = self._sample()
        if busy0 is None or busy1 is None or wall1 <= wall0:
            return None
        return max(0.0, (busy1 - busy0 - (own1 - own0)) / (wall1 - wall0))

    def adjust(self, force: bool = False) -> int:
        """Re-check (at most every `every_s` seconds unless forced); returns the thread count in use."""
        if force or time.monotonic() - self.window[2] >= self.every_s:
            others = self.others_busy_cores()
            if others is not None:
                # A core counts as taken from 0.25 of a core of other work on: spinning workers lose more
                # to a light competitor than a second thread gains.
                idle = len(self.cpus) - math.ceil(max(others - 0.25, 0.0))
                threads = max(1, min(self.most, idle))
                if threads != torch.get_num_threads():
                    torch.set_num_threads(threads)
        return torch.get_num_threads()
