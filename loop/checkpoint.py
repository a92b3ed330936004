"""Checkpoint files: atomic writes, the last K kept, the newest readable one found on resume."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, quota); the previous checkpoints are intact."""


def checkpoint_path(directory: Path, env_steps: int) -> Path:
    return directory / f"step_{env_steps:012d}.pt"


def save(state: dict[str, Any], directory: Path, env_steps: int, keep: int) -> Path:
    """Write `state` so that a crash at any moment leaves the previous checkpoints intact.

    The bytes go to a temporary file in the same directory, are fsynced, then renamed over the final
    name (atomic on POSIX); only then are checkpoints beyond the newest `keep` deleted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, env_steps)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            # Protocol 4 stores numpy arrays (replay contents) as raw bytes; torch's default (2) inflates them ~1.5x.
            torch.save(state, f, pickle_protocol=4)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            good = list_checkpoints(directory)
            raise CheckpointWriteError(
                exc.errno, f"checkpoint at env step {env_steps} not written to {directory}: {os.strerror(exc.errno)} "
                f"({shutil.disk_usage(directory).free / 2**30:.2f} GiB free); last good checkpoint: "
                f"{good[-1].name if good else 'none'} (free space, then resume=<run dir>)") from exc
        raise
    _fsync_dir(directory)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def save_diagnostic(state: dict[str, Any], directory: Path, env_steps: int) -> Path:
    """The state at a numerical fault, for post-mortems; named so that resume never picks it up and
    the `keep` rotation never deletes good checkpoints for it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"nonfinite_step_{env_steps:012d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Finished checkpoint files, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    # weights_only=False: checkpoints hold numpy RNG states and env snapshots, written by us.
    return torch.load(path, map_location=map_location, weights_only=False)


def load_latest(directory: Path, map_location: str | torch.device = "cpu") -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint that loads; a truncated or corrupt newest one falls back to the previous."""
    errors = []
    for path in reversed(list_checkpoints(directory)):
        try:
            return path, load(path, map_location)
        except Exception as exc:  # a torn file surfaces as several exception types
            errors.append(f"{path.name}: {exc}")
    detail = "; ".join(errors) if errors else "none found"
    raise FileNotFoundError(f"no readable checkpoint in {directory} ({detail})")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
