"""Stop signals: a scheduler's kill, SLURM's time-limit warning, submitit's preemption, Ctrl-C.

While a run is inside `StopSignals`, each of them only records a stop request; the loop polls it (every
vector step, every evaluation step) and checkpoints before returning. The handlers stay in place until the
run's teardown is over, so a signal that arrives late never kills a run mid-write.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

# SIGTERM: scheduler kill or `kill`; SIGUSR1: SLURM's warning before the time limit (--signal=USR1@90);
# SIGUSR2: submitit's preemption signal (its handler requeues the job; we chain to it after checkpointing);
# SIGINT: Ctrl-C (a second Ctrl-C interrupts at once).
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)


class StopSignals:
    """Records the first stop signal in `received`; restores the previous handlers on exit."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python handles signals there only
            self.previous = {signum: signal.signal(signum, self._request_stop) for signum in PREEMPTION_SIGNALS}
        return self

    def _request_stop(self, signum: int, _frame: Any) -> None:
        if self.received is None:
            self.received = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def chain(self) -> None:
        """Hand the signal to the handler that was there before (e.g. submitit's: it requeues the job, which
        then resumes our checkpoint)."""
        previous = self.previous.get(self.received)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.received, None)


class StopRequested(Exception):  # noqa: N818  (a request, not an error)
    """A stop signal arrived during a phase the loop abandons rather than finishes (evaluation, video)."""
