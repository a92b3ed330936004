"""Checkpoint files: a write killed half-way or a full disk never costs the last good checkpoint."""

import errno

import pytest
import torch

from loop import checkpoint


def state(value: float) -> dict:
    return {"weights": torch.full((1000,), value)}


def test_keeps_the_newest_k(tmp_path):
    for step in (10, 20, 30, 40):
        checkpoint.save(state(step), tmp_path, step, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_000000000030.pt", "step_000000000040.pt"]


def test_a_write_killed_half_way_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint.save(state(1.0), tmp_path, 10, keep=2)

    def killed_mid_write(obj, f, **_):
        f.write(b"\x80\x02partial pickle")
        raise KeyboardInterrupt  # SIGINT, or any death between the first byte and the rename

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(state(2.0), tmp_path, 20, keep=2)
    assert [p.name for p in tmp_path.iterdir()] == ["step_000000000010.pt"]  # no temp file left behind
    path, loaded = checkpoint.load_latest(tmp_path)
    assert path.name == "step_000000000010.pt" and loaded["weights"][0] == 1.0


def test_a_torn_newest_file_falls_back_to_the_previous(tmp_path):
    checkpoint.save(state(1.0), tmp_path, 10, keep=2)
    checkpoint.save(state(2.0), tmp_path, 20, keep=2)
    newest = tmp_path / "step_000000000020.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # e.g. SIGKILL during a non-atomic copy by hand
    path, loaded = checkpoint.load_latest(tmp_path)
    assert path.name == "step_000000000010.pt" and loaded["weights"][0] == 1.0


def test_disk_full_is_reported_with_the_last_good_checkpoint(tmp_path, monkeypatch):
    checkpoint.save(state(1.0), tmp_path, 10, keep=1)

    def disk_full(obj, f, **_):
        f.write(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(checkpoint.CheckpointWriteError,
                       match=r"env step 20 not written .*No space left on device .*GiB free.*"
                             r"last good checkpoint: step_000000000010.pt"):
        checkpoint.save(state(2.0), tmp_path, 20, keep=1)
    assert [p.name for p in tmp_path.iterdir()] == ["step_000000000010.pt"]
