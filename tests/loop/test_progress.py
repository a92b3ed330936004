"""The progress display: speed from a recent window, phases shown as they happen, redrawn while no step advances."""

from __future__ import annotations

import time

from loop.progress import Progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_sps_and_eta_come_from_the_recent_window_not_the_warm_up():
    clock = FakeClock()
    progress = Progress(1_000_000, 0, quiet=True, window_seconds=30.0, clock=clock)
    steps = 0
    progress.set_phase("warm-up")
    for _ in range(100):  # warm-up: 1000 env steps/s for 10 s
        clock.now += 0.1
        steps += 100
        progress.advance(steps)
    assert "SPS=1000 ETA=? warm-up" in progress.status()  # no ETA from random steps
    progress.set_phase("learning")
    for _ in range(6):  # learning: 3 env steps/s; its speed shows within seconds, not after the 30 s window
        clock.now += 1 / 3
        steps += 1
        progress.advance(steps)
    assert abs(progress.rate() - 3.0) < 0.3
    for _ in range(600):  # learning: 3 env steps/s for 200 s
        clock.now += 1 / 3
        steps += 1
        progress.advance(steps)
    assert abs(progress.rate() - 3.0) < 0.3  # since the start it would be ~48/s
    status = progress.status()
    assert "SPS=3" in status
    eta_seconds = (1_000_000 - steps) / progress.rate()
    assert f"ETA={int(eta_seconds // 3600)}:" in status  # ~92 hours, not the ~6 the start-to-now rate gives


def test_a_phase_that_advances_no_steps_shows_its_name_and_duration():
    clock = FakeClock()
    progress = Progress(1000, 0, quiet=True, clock=clock)
    progress.set_phase("learning")
    with progress.during("evaluation"):
        clock.now += 75
        assert "evaluation 01:15" in progress.status()
    assert progress.phase == "learning"


def test_the_bar_is_redrawn_every_refresh_while_the_loop_is_busy():
    progress = Progress(1000, 0, quiet=False, refresh_seconds=0.05)
    drawn = []
    refresh = progress.bar.refresh
    progress.bar.refresh = lambda *a, **k: (drawn.append(progress.bar.postfix), refresh(*a, **k))
    with progress, progress.during("reinit"):
        time.sleep(0.5)  # one long call: no advance() happens in it
    assert sum("reinit" in postfix for postfix in drawn) >= 3
