"""The run directory: one process at a time (a lock naming its holder), stale locks never block, and a
run_dir that cannot be made is refused before anything is written."""

import subprocess
import sys
import time

import pytest

from loop import rundir
from loop.config import ConfigError

HOLD = "import sys, time; from pathlib import Path; from loop import rundir\n" \
       "with rundir.locked(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)"


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=rf"run_dir=.* is in use by process {holder.pid} "), \
                rundir.locked(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    # The holder died without cleaning up: its lock file stays, its lock does not.
    assert (tmp_path / rundir.LOCK_FILE).is_file()
    deadline = time.monotonic() + 10
    with rundir.locked(tmp_path):
        assert time.monotonic() < deadline


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with rundir.locked(tmp_path):
        pass
    with rundir.locked(tmp_path):
        pass


def test_a_run_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        rundir.check_creatable(tmp_path / "a_file" / "run")


def test_a_read_only_filesystem_is_refused(tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            rundir.check_creatable(mount / "runs" / "x")
    finally:
        subprocess.run(["umount", str(mount)], check=False)
