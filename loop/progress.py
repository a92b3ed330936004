"""The live progress display: env steps, SPS and ETA over a recent window, the current phase, latest returns."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

WARM_UP = "warm-up"  # the loop's phase of uniform random actions before the first update
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


class Progress:
    """Speed is measured over the last `window_seconds`, not since the start, so the fast warm-up does not
    linger in SPS or ETA once updates begin, and time spent evaluating counts as it happens. A daemon thread
    redraws the bar every `refresh_seconds`, so it keeps moving through evaluations, interventions and
    checkpoint writes, which advance no env steps. `quiet` (sweeps): no bar and no thread; `line()` prints
    one line instead (the loop calls it per evaluation).
    """

    def __init__(self, total_env_steps: int, env_steps: int, *, quiet: bool, window_seconds: float = 30.0,
                 refresh_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.total = total_env_steps
        self.env_steps = env_steps
        self.quiet = quiet
        self.window_seconds = window_seconds
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        now = clock()
        self.samples: deque[tuple[float, int]] = deque([(now, env_steps)])  # (time, env steps), oldest first
        self.figures: dict[str, str] = {}  # latest training return, evaluation return, ...
        self.phase, self.phase_started, self.phase_timed = "", now, False
        self._drawn = now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bar = None if quiet else tqdm(total=total_env_steps, initial=env_steps, unit="step", unit_scale=True,
                                           dynamic_ncols=True, desc="env steps", bar_format=BAR_FORMAT)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self._thread = threading.Thread(target=self._redraw_every, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.bar is not None:
            self.draw()
            self.bar.close()
            self.bar = None  # later messages print plainly, below the final bar

    def _redraw_every(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.draw()

    # ------------------------------------------------------------------------- what the loop reports
    def advance(self, env_steps: int) -> None:
        """Called every vector step: record the count, keep about one sample per second of the window."""
        self.env_steps = env_steps
        now = self.clock()
        if now - self.samples[-1][0] >= 1.0:
            self.samples.append((now, env_steps))
            while len(self.samples) > 2 and self.samples[1][0] <= now - self.window_seconds:
                self.samples.popleft()
        if now - self._drawn >= 0.5:
            self.draw()

    def set_phase(self, phase: str, *, timed: bool = False) -> None:
        if phase != self.phase:
            now = self.clock()
            if self.phase == WARM_UP and not timed:  # its random steps say nothing of the learning speed
                self.samples = deque([(now, self.env_steps)])
            self.phase, self.phase_started, self.phase_timed = phase, now, timed

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        """A phase that advances no env steps (evaluation, video, reinit, checkpoint); shown with its duration."""
        previous = self.phase
        self.set_phase(phase, timed=True)
        self.draw()
        try:
            yield
        finally:
            self.set_phase(previous)

    # ------------------------------------------------------------------------- what it shows
    def rate(self, now: float | None = None) -> float:
        """Env steps per second over the recent window (0 until a second has passed)."""
        now = self.clock() if now is None else now
        start_time, start_steps = self.samples[0]
        elapsed = now - start_time
        return (self.env_steps - start_steps) / elapsed if elapsed >= 1.0 else 0.0

    def status(self, now: float | None = None) -> str:
        """`SPS=.. ETA=.. <phase> [<time in it, for phases that advance no env steps>] return=.. eval=..`."""
        now = self.clock() if now is None else now
        sps = self.rate(now)
        # Random warm-up steps are 10-100x faster than learning ones: an ETA from them would be wrong.
        eta = tqdm.format_interval((self.total - self.env_steps) / sps) if sps > 0 and self.phase != WARM_UP else "?"
        parts = [f"SPS={sps:.3g}" if sps < 100 else f"SPS={sps:.0f}", f"ETA={eta}"]
        if self.phase:
            timed = f" {tqdm.format_interval(now - self.phase_started)}" if self.phase_timed else ""
            parts.append(self.phase + timed)
        parts += [f"{key}={value}" for key, value in self.figures.items()]
        return " ".join(parts)

    def draw(self) -> None:
        if self.bar is None:
            return
        with self._lock:  # the loop and the redraw thread
            now = self.clock()
            self._drawn = now
            self.bar.n = self.env_steps
            self.bar.set_postfix_str(self.status(now), refresh=False)
            self.bar.refresh()

    def line(self) -> None:
        """The quiet-mode progress line."""
        if self.quiet:
            print(f"{self.env_steps}/{self.total} env steps  {self.status()}", flush=True)
