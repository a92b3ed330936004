"""The run directory: checked writable before anything is written, and locked while a process uses it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loop.config import ConfigError

LOCK_FILE = ".lock"


def fresh(path: str) -> Path:
    """`path`, or `path-1`, `path-2`, ... when it exists: a new run never writes into an old one."""
    run_dir, n = Path(path), 1
    while run_dir.exists():
        run_dir, n = Path(f"{path}-{n}"), n + 1
    return run_dir


def check_creatable(run_dir: Path) -> None:
    """ConfigError unless `run_dir` exists as a writable directory or can be made under one."""
    parent = run_dir
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"run_dir={str(run_dir)!r} cannot be made: {str(parent)!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"run_dir={str(run_dir)!r} cannot be made: {str(parent)!r} is not writable")


@contextmanager
def locked(run_dir: Path, key: str = "run_dir") -> Iterator[None]:
    """Hold an exclusive lock on `run_dir` (a lock file holding our PID); ConfigError naming the holder's
    PID when another process has it. The kernel drops the lock when its holder dies, so a lock file
    left by a killed run never blocks."""
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"{key}={str(run_dir)!r} cannot be locked: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ConfigError(f"{key}={str(run_dir)!r} is in use by process {holder} (lock {path}); "
                              "wait for it to end or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
