"""Checkpoint files: atomic writes, verified digests, the run's identity, the last K good ones kept.

A checkpoint is what `torch.save` writes (so `torch.load` still opens it, where `loop` is importable: numpy
arrays come back through `loop.checkpoint._array`), followed by a trailer: one
JSON line holding the CRC-32 of the bytes before it, their length, the run's identity and the env step,
then the line's length and CRC-32 and a magic tag. `load` verifies the trailer before unpickling anything, so a
flipped byte, a truncated or empty file, or another run's checkpoint is refused by name instead of
being resumed. The run's identity is a random id written once, beside the checkpoints (`run_id`).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import struct
import tempfile
import types
import uuid
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

_NAME = re.compile(r"^step_(\d+)\.pt$")
_MAGIC = b"FIRE-RL-CKPT-1\n"
_TAIL = struct.Struct("<QI")  # the trailer's length and its own CRC-32, before the magic tag
TEMPORARY_PREFIX = ".tmp-"
RUN_ID_FILE = "run_id"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, read-only, I/O error); the previous ones are intact."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno N]" prefix
        return self.strerror


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint: damaged (digest, length, truncated) or another run's."""


def checkpoint_path(directory: Path, env_steps: int) -> Path:
    return directory / f"step_{env_steps:012d}.pt"


def run_id(directory: Path, *, create: bool = False) -> str | None:
    """The identity of the run whose checkpoints live in `directory` (None for runs made before ids)."""
    path = directory / RUN_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    if not create:
        return None
    identity = uuid.uuid4().hex
    _write_atomically(path, identity.encode())
    return identity


class _ChecksummedFile:
    """A write-only file that checksums what passes through it (torch.save streams into it).

    CRC-32 detects every error burst up to 32 bits (any flipped byte) and misses random damage with
    probability 2**-32; it runs ~3x faster than SHA-256 here (GB-sized replay checkpoints), and the threat
    is storage damage, not forgery."""

    def __init__(self, f):
        self.f, self.crc32, self.size = f, 0, 0

    def write(self, data) -> int:
        self.crc32 = zlib.crc32(data, self.crc32)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def _array(data: torch.Tensor, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A numpy array `save` wrote as a byte tensor, back as the array it was (unpickling calls it by name)."""
    return data.numpy().view(dtype).reshape(shape)


class _ArrayPickler(pickle.Pickler):
    """Pickles numpy arrays (replay contents, env snapshots) as byte tensors on the same memory, so that
    torch.save streams their bytes into the file as it does a tensor's storage. Pickled as arrays they are
    copied ~3x in memory first (bytes, torch's pickle buffer, its value): a checkpoint of a full
    1M-transition h1 replay (1.2 GB) would briefly need ~3.6 GB more. As bytes, every dtype goes the same way,
    and two arrays on the same memory never meet torch's refusal of one storage under two dtypes."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not np.ndarray or obj.dtype.hasobject:
            return NotImplemented
        contiguous = obj if obj.flags.c_contiguous else obj.copy(order="C")
        with warnings.catch_warnings():  # read-only arrays: the tensor is only read
            warnings.simplefilter("ignore", UserWarning)
            data = torch.from_numpy(contiguous.reshape(-1).view(np.uint8))
        return _array, (data, obj.dtype, obj.shape)


_PICKLE = types.ModuleType("loop.checkpoint.pickle")
_PICKLE.Pickler = _ArrayPickler


def save(state: dict[str, Any], directory: Path, env_steps: int, keep: int) -> Path:
    """Write `state` so that a crash or a storage failure at any moment leaves the previous checkpoints intact.

    The bytes go to a temporary file in the same directory, are fsynced, then renamed over the final
    name (atomic on POSIX); only then are checkpoints beyond the newest `keep` deleted. Any storage
    failure (full disk, read-only or failing filesystem, torch's zip writer giving up) raises
    CheckpointWriteError naming the last good checkpoint.
    """
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        identity = run_id(directory, create=True)
        final = checkpoint_path(directory, env_steps)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX, suffix=".pt")
        with os.fdopen(fd, "wb") as f:
            checksummed = _ChecksummedFile(f)
            torch.save(state, checksummed, pickle_module=_PICKLE, pickle_protocol=4)
            trailer = json.dumps({"crc32": checksummed.crc32, "bytes": checksummed.size, "run_id": identity,
                                  "env_steps": env_steps}).encode()
            f.write(trailer + _TAIL.pack(len(trailer), zlib.crc32(trailer)) + _MAGIC)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(directory)
    except BaseException as exc:
        if tmp is not None:
            try:
                Path(tmp).unlink(missing_ok=True)
            except OSError:
                pass  # e.g. the filesystem went read-only: remove_temporary() cleans it at the next start
        cause = _storage_cause(exc)
        if cause is not None:
            raise CheckpointWriteError(getattr(cause, "errno", None) or errno.EIO,
                                       _write_failure(directory, env_steps, cause)) from exc
        raise
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def _storage_cause(exc: BaseException) -> BaseException | None:
    """The storage error behind `exc`: an OSError, possibly wrapped by torch's zip writer (a RuntimeError
    "[enforce fail at inline_container.cc] unexpected pos", with the OSError as its context), or None."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc if isinstance(exc, RuntimeError) and "inline_container" in str(exc) else None


def _write_failure(directory: Path, env_steps: int, exc: BaseException) -> str:
    reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc).splitlines()[0][:120]
    try:
        free = f"{shutil.disk_usage(directory).free / 2**30:.2f} GiB free"
    except OSError:
        free = "free space unknown"
    good = list_checkpoints(directory)
    return (f"checkpoint at env step {env_steps} not written to {directory}: {reason} ({free}); last good "
            f"checkpoint: {good[-1].name if good else 'none'} (fix the storage, then resume=<run dir>)")


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
    """Checkpoint files by name (not yet verified), oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def remove_temporary(directory: Path) -> list[Path]:
    """Delete the temporary files of writes that were killed (only while no other process writes here)."""
    found = sorted(directory.glob(TEMPORARY_PREFIX + "*")) if directory.is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


def verify(path: Path, identity: str | None = None) -> dict[str, Any] | None:
    """Check `path`'s trailer and digest (and, given `identity`, that it is that run's); return the trailer.

    Raises CheckpointError naming what is wrong. Files written before trailers existed return None.
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            tail = _TAIL.size + len(_MAGIC)
            if size < tail:
                raise CheckpointError(f"{path.name} is damaged ({size} bytes, truncated or empty)")
            f.seek(size - tail)
            end = f.read(tail)
            if end[_TAIL.size:] != _MAGIC:
                if identity is None and size and _is_zip(f):  # a checkpoint from before digests existed
                    return None
                raise CheckpointError(f"{path.name} is damaged (no checkpoint trailer: truncated, or not a checkpoint)")
            length, trailer_crc32 = _TAIL.unpack(end[:_TAIL.size])
            if length > size - tail:
                raise CheckpointError(f"{path.name} is damaged (trailer length {length} exceeds the file)")
            f.seek(size - tail - length)
            text = f.read(length)
            if zlib.crc32(text) != trailer_crc32:
                raise CheckpointError(f"{path.name} is damaged (CRC-32 mismatch in its trailer)")
            trailer = json.loads(text)
            if trailer.get("bytes") != size - tail - length:
                raise CheckpointError(f"{path.name} is damaged (holds {size - tail - length} bytes, trailer says "
                                      f"{trailer.get('bytes')})")
            f.seek(0)
            crc32, left = 0, trailer["bytes"]
            while left:
                chunk = f.read(min(left, 1 << 24))
                crc32, left = zlib.crc32(chunk, crc32), left - len(chunk)
    except OSError as exc:
        raise CheckpointError(f"{path.name} cannot be read: {exc.strerror or exc}") from None
    if crc32 != trailer.get("crc32"):
        raise CheckpointError(f"{path.name} is damaged (CRC-32 mismatch: its bytes changed after writing)")
    if identity is not None and trailer.get("run_id") != identity:
        raise CheckpointError(f"{path.name} belongs to another run (run_id {trailer.get('run_id')}, this run's "
                              f"is {identity})")
    return trailer


def _is_zip(f) -> bool:
    f.seek(0)
    return f.read(4) == b"PK\x03\x04"


def load(path: Path, map_location: str | torch.device = "cpu", identity: str | None = None) -> dict[str, Any]:
    """The verified contents of a checkpoint; CheckpointError when it is damaged or not `identity`'s."""
    verify(path, identity)
    try:
        # weights_only=False: checkpoints hold numpy RNG states and env snapshots, written by us.
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # a legacy file without a digest can still be torn: several exception types
        raise CheckpointError(f"{path.name} cannot be loaded ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(state, dict) or "agent" not in state:
        raise CheckpointError(f"{path.name} is not a train.py checkpoint")
    return state


def load_latest(directory: Path, map_location: str | torch.device = "cpu",
                report=print) -> tuple[Path, dict[str, Any]]:
    """The newest good checkpoint of this run. A damaged or foreign newer one is reported in one line and
    renamed `<name>.rejected`, so that it is never resumed or counted among the `keep` newest again."""
    identity = run_id(directory)
    for path in reversed(list_checkpoints(directory)):
        try:
            return path, load(path, map_location, identity)
        except CheckpointError as error:
            rejected = path.with_name(path.name + ".rejected")
            os.replace(path, rejected)
            report(f"skipping {error}; kept as {rejected.name}")
    raise FileNotFoundError(f"no good checkpoint in {directory}")


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMPORARY_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
