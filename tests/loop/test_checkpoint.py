"""Checkpoint files: a write killed half-way, a full or failing disk, a damaged or foreign file never cost
the last good checkpoint, and are never resumed."""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from loop import checkpoint


def state(value: float) -> dict:
    return {"agent": {"weights": torch.full((1000,), value)}}


def names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def resumed(directory) -> tuple[str, float, list[str]]:
    lines = []
    path, loaded = checkpoint.load_latest(directory, report=lines.append)
    return path.name, float(loaded["agent"]["weights"][0]), lines


def test_keeps_the_newest_k(tmp_path):
    for step in (10, 20, 30, 40):
        checkpoint.save(state(step), tmp_path, step, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_000000000030.pt", "step_000000000040.pt"]


def test_a_checkpoint_is_still_a_torch_file(tmp_path):
    path = checkpoint.save(state(1.0), tmp_path, 10, keep=2)
    assert torch.load(path, weights_only=False)["agent"]["weights"][0] == 1.0


def test_numpy_arrays_come_back_as_they_were(tmp_path):
    arrays = {"float32": np.arange(12, dtype=np.float32).reshape(3, 4), "uint8": np.arange(5, dtype=np.uint8),
              "bool": np.array([True, False]), "0-d": np.array(2.5), "strided": np.arange(10.0)[::3],
              "read-only": np.frombuffer(b"\x01\x02", np.uint8), "strings": np.array(["a", "bc"]),
              "empty": np.zeros((0, 7), np.int64), "big-endian": np.arange(3, dtype=">i4")}
    shared = np.arange(4, dtype=np.int32)
    arrays["same memory, another dtype"], arrays["shared"] = shared.view(np.float32), shared
    loaded = checkpoint.load(checkpoint.save({"agent": {}, **arrays}, tmp_path, 10, keep=2))
    for name, array in arrays.items():
        back = loaded[name]
        assert type(back) is np.ndarray and back.shape == array.shape and back.dtype == array.dtype, name
        assert np.array_equal(back, array), name


SAVE_MEMORY = """
import tempfile, numpy as np
from pathlib import Path
from loop import checkpoint
def peak():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024
replay = np.ones((2**20, 16), np.float32)  # 64 MiB, already resident
before = peak()
checkpoint.save({"agent": {}, "replay": {"obs": replay}}, Path(tempfile.mkdtemp()), 1, keep=1)
print(peak() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status")
def test_saving_streams_arrays_without_copying_them_in_memory():
    """A replay's arrays go to the file as they are: pickled as arrays they were copied ~3x first (+192 MiB here)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(SAVE_MEMORY)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], check=True)
    assert int(result.stdout) < 8 * 2**20


def test_a_write_killed_half_way_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint.save(state(1.0), tmp_path, 10, keep=2)

    def killed_mid_write(obj, f, **_):
        f.write(b"\x80\x02partial pickle")
        raise KeyboardInterrupt  # SIGINT, or any death between the first byte and the rename

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(state(2.0), tmp_path, 20, keep=2)
    assert names(tmp_path) == ["run_id", "step_000000000010.pt"]  # no temp file left behind
    assert resumed(tmp_path)[:2] == ("step_000000000010.pt", 1.0)


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "flipped byte in the tensors": lambda p: flip_byte(p, p.stat().st_size // 2),
    "flipped byte in the trailer": lambda p: flip_byte(p, p.stat().st_size - 30),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:100]),
    "truncated trailer": lambda p: p.write_bytes(p.read_bytes()[:-5]),
    "empty": lambda p: p.write_bytes(b""),
    "not a checkpoint": lambda p: p.write_text("hello"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_newest_file_is_named_set_aside_and_not_counted(tmp_path, damage):
    checkpoint.save(state(1.0), tmp_path, 10, keep=2)
    checkpoint.save(state(2.0), tmp_path, 20, keep=2)
    DAMAGE[damage](tmp_path / "step_000000000020.pt")
    name, value, lines = resumed(tmp_path)
    assert (name, value) == ("step_000000000010.pt", 1.0)
    assert len(lines) == 1 and "step_000000000020.pt" in lines[0] and "\n" not in lines[0]
    # The damaged file no longer counts toward keep=2: the good older one survives the next save.
    checkpoint.save(state(3.0), tmp_path, 30, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_000000000010.pt", "step_000000000030.pt"]
    assert (tmp_path / "step_000000000020.pt.rejected").is_file()


def test_a_flipped_byte_without_the_digest_would_have_loaded(tmp_path):
    """The case the digest exists for: torch.load alone accepts this damage silently."""
    path = checkpoint.save(state(1.0), tmp_path, 10, keep=2)
    data = bytearray(path.read_bytes())
    at = data.index(torch.full((1,), 1.0).numpy().tobytes())  # a float of the stored tensor
    data[at + 3] ^= 0x01
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=False)["agent"]["weights"][0] != 1.0  # silently wrong
    with pytest.raises(checkpoint.CheckpointError, match="CRC-32 mismatch"):
        checkpoint.load(path)


def test_another_runs_checkpoint_is_refused(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    checkpoint.save(state(1.0), ours, 10, keep=2)
    foreign = checkpoint.save(state(9.0), theirs, 20, keep=2)
    os.replace(foreign, ours / foreign.name)
    name, value, lines = resumed(ours)
    assert (name, value) == ("step_000000000010.pt", 1.0)
    assert "belongs to another run" in lines[0]


def test_no_good_checkpoint_raises(tmp_path):
    checkpoint.save(state(1.0), tmp_path, 10, keep=2)
    (tmp_path / "step_000000000010.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no good checkpoint"):
        checkpoint.load_latest(tmp_path, report=lambda line: None)


def test_checkpoints_from_before_digests_still_load(tmp_path):
    torch.save(state(4.0), tmp_path / "step_000000000010.pt")  # what the previous version wrote
    assert resumed(tmp_path)[:2] == ("step_000000000010.pt", 4.0)


def test_leftover_temporary_files_are_removed(tmp_path):
    checkpoint.save(state(1.0), tmp_path, 10, keep=2)
    (tmp_path / ".tmp-abc.pt").write_bytes(b"partial")
    assert [p.name for p in checkpoint.remove_temporary(tmp_path)] == [".tmp-abc.pt"]
    assert names(tmp_path) == ["run_id", "step_000000000010.pt"]


STORAGE_FAILURES = {
    "disk full": OSError(errno.ENOSPC, "No space left on device"),
    "read-only filesystem": OSError(errno.EROFS, "Read-only file system"),
    "I/O error": OSError(errno.EIO, "Input/output error"),
    "torch's zip writer": RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 2048 vs 1024"),
}


@pytest.mark.parametrize("failure", STORAGE_FAILURES, ids=list(STORAGE_FAILURES))
def test_a_storage_failure_names_the_last_good_checkpoint(tmp_path, monkeypatch, failure):
    checkpoint.save(state(1.0), tmp_path, 10, keep=1)

    def failing(obj, f, **_):
        f.write(b"x" * 10)
        raise STORAGE_FAILURES[failure]

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(checkpoint.CheckpointWriteError) as error:
        checkpoint.save(state(2.0), tmp_path, 20, keep=1)
    text = str(error.value)
    assert "\n" not in text and text.startswith("checkpoint at env step 20 not written")
    assert "last good checkpoint: step_000000000010.pt" in text
    assert names(tmp_path) == ["run_id", "step_000000000010.pt"]


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 1 MiB tmpfs (needs root and mount permission; skipped otherwise)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here: {result.stderr.decode().strip() or 'not permitted'}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_real_full_disk_leaves_the_previous_checkpoint(tiny_filesystem):
    checkpoint.save({"agent": {"weights": torch.zeros(50_000)}}, tiny_filesystem, 10, keep=2)  # 200 KB
    with pytest.raises(checkpoint.CheckpointWriteError, match=r"No space left on device .*last good checkpoint: "
                                                              r"step_000000000010.pt"):
        checkpoint.save({"agent": {"weights": torch.zeros(500_000)}}, tiny_filesystem, 20, keep=2)  # 2 MB
    assert names(tiny_filesystem) == ["run_id", "step_000000000010.pt"]
    assert resumed(tiny_filesystem)[0] == "step_000000000010.pt"
