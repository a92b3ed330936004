"""threads=auto follows the cores other processes leave idle."""

import pytest
import torch

from loop import threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("others_busy_cores", "expected"), [(0.0, 2), (0.2, 2), (0.5, 1), (1.0, 1), (2.0, 1)])
def test_threads_follow_the_idle_cores(monkeypatch, others_busy_cores, expected):
    clock = {"busy": 0.0, "wall": 0.0}
    monkeypatch.setattr(threads, "_busy_seconds", lambda cpus: clock["busy"])
    monkeypatch.setattr(threads, "_own_seconds", lambda: 0.0)
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["wall"])

    def sleep(seconds):
        clock["wall"] += seconds
        clock["busy"] += others_busy_cores * seconds

    monkeypatch.setattr(threads.time, "sleep", sleep)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    torch.set_num_threads(2)
    auto = threads.AutoThreads(every_s=10.0)
    assert torch.get_num_threads() == expected
    # The other work stops: within the next window the idle cores are taken back.
    sleep(5.0)
    others_busy_cores = 0.0
    assert auto.adjust() == expected  # not yet due
    clock["wall"] += 60.0  # a window mostly idle
    assert auto.adjust() == 2
