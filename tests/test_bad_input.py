"""Fuzz the front door: bad values through train.py each end in one line naming the key, exit code 2, no
traceback, and no run directory, before anything is built or written.

Most cases run train.py's Hydra entry point in this process (a subprocess per case would take minutes);
a handful go through a real subprocess to show the two agree."""

from __future__ import annotations

import errno
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from loop import checkpoint
from loop.config import compose

ROOT = Path(__file__).resolve().parents[1]
BASE = ["agent=sac", "env=pendulum", "total_env_steps=1000", "threads=1"]


def fixtures(root: Path) -> dict[str, str]:
    """Files and directories the path cases point at (made once per test, outside the run directory)."""
    f = root / "fixtures"
    (f / "not_a_run").mkdir(parents=True)
    (f / "a_file").write_text("hello")
    (f / "empty.pt").write_bytes(b"")
    (f / "broken").mkdir()
    (f / "broken" / "config.yaml").write_text("seed: [1, 2\nagent: {")
    (f / "partial").mkdir()
    (f / "partial" / "config.yaml").write_text("seed: 0\n")  # parses, but train.py never wrote it
    saved = OmegaConf.create(compose(*BASE, f"run_dir={f}/never_checkpointed"))
    (f / "never_checkpointed").mkdir()
    OmegaConf.save(saved, f / "never_checkpointed" / "config.yaml")
    (f / "only_foreign" / "checkpoints").mkdir(parents=True)
    OmegaConf.save(saved, f / "only_foreign" / "config.yaml")
    checkpoint.run_id(f / "only_foreign" / "checkpoints", create=True)
    checkpoint.save({"agent": {}}, f / "elsewhere", 10, keep=1)
    (f / "elsewhere" / "step_000000000010.pt").rename(f / "only_foreign" / "checkpoints" / "step_000000000010.pt")
    sac_on = {"agent": {"name": "sac"}, "env": {"id": "Pendulum-v1"}}
    checkpoint.save({"agent": {"critic": torch.zeros(3)}, "config": sac_on}, f / "other_net", 10, keep=1)
    checkpoint.save({"agent": {}, "config": {"agent": {"name": "dqn"}, "env": {"id": "CartPole-v1"}}},
                    f / "other_agent", 10, keep=1)
    return {k: str(v) for k, v in {
        "missing": f / "missing", "file": f / "a_file", "empty": f / "empty.pt", "not_a_run": f / "not_a_run",
        "broken": f / "broken", "partial": f / "partial", "never": f / "never_checkpointed",
        "foreign": f / "only_foreign", "other_net": f / "other_net" / "step_000000000010.pt",
        "other_agent": f / "other_agent" / "step_000000000010.pt",
    }.items()}


# (overrides, the key the message must name); {name} is a path from fixtures().
CASES = [
    ("seed=-1", "seed"), ("seed=abc", "seed"), ("seed=1.5", "seed"), ("seed=4294967296", "seed"),
    ("agent=dqn env=atari env.game=pong seed=2147483647", "seed"),
    ("total_env_steps=0", "total_env_steps"), ("total_env_steps=-5", "total_env_steps"),
    ("total_env_steps=1e6", "total_env_steps"), ("total_env_steps=abc", "total_env_steps"),
    ("learning_starts=-1", "learning_starts"), ("learning_starts=2000", "learning_starts"),
    ("learning_starts=10", "learning_starts"), ("learning_starts=soon", "learning_starts"),
    ("replay_ratio=0", "replay_ratio"), ("replay_ratio=-1", "replay_ratio"), ("replay_ratio=0.0004", "replay_ratio"),
    ("replay_ratio=abc", "replay_ratio"), ("replay_ratio=inf", "replay_ratio"), ("replay_ratio=nan", "replay_ratio"),
    ("replay.capacity=0", "replay.capacity"), ("replay.capacity=100", "replay.capacity"),
    ("replay.capacity=10000000000000", "replay.capacity"), ("replay.kind=prioritized", "replay.kind"),
    ("replay.kind=atari", "replay.kind"), ("replay.n_step=0", "replay.n_step"), ("replay.n_step=3", "replay.n_step"),
    ("eval.every_env_steps=0", "eval.every_env_steps"), ("eval.every_env_steps=-3", "eval.every_env_steps"),
    ("eval.episodes=0", "eval.episodes"), ("eval.episodes=null eval.max_env_steps=null", "eval.episodes"),
    ("eval.max_env_steps=0", "eval.max_env_steps"), ("eval.video=true eval.video_max_steps=0", "eval.video"),
    ("log.every_env_steps=0", "log.every_env_steps"), ("checkpoint.every_env_steps=0", "checkpoint.every_env_steps"),
    ("checkpoint.keep=0", "checkpoint.keep"), ("checkpoint.keep=two", "checkpoint.keep"),
    ("diagnostics.every_updates=-1", "diagnostics.every_updates"),
    ("threads=0", "threads"), ("threads=many", "threads"),
    ("device=gpu", "device"), ("device=cuda", "device"), ("device=cuda:7", "device"), ("device=mps", "device"),
    ("precision=fp16", "precision"), ("precision=int8", "precision"),
    ("agent=dqn", "agent=dqn"), ("replay.batch_size=0", "replay.batch_size"),
    ("replay.batch_size=true", "replay.batch_size"),
    ("replay.gamma=2", "replay.gamma"), ("+agent.foo=1", "foo"), ("+foo=1", "foo"), ("+replay.foo=1", "replay.foo"),
    ("+eval.bar=1", "eval.bar"), ("env.num_envs=0", "env.num_envs"), ("env.eval_num_envs=0", "env.eval_num_envs"),
    ("env.action_repeat=0", "env.action_repeat"), ("env.action_repeat=1.5", "env.action_repeat"),
    ("env.max_episode_steps=0", "env.max_episode_steps"), ("env.suite=dmc", "env.suite"),
    ("env.vectorization=ray", "env.vectorization"), ("env.id=Nope-v9", "env"),
    ("agent=dqn env=atari env.game=pacman", "env.game"), ("agent=dqn env=atari env.kwargs.backend=python", "backend"),
    ("reinit=fire", "reinit"), ("reinit=fire reinit.at_env_steps=[5000]", "reinit.at_env_steps"),
    ("reinit=fire reinit.every_env_steps=-1", "reinit.every_env_steps"),
    ("reinit=fire reinit.every_env_steps=10", "reinit.every_env_steps"), ("reinit.name=dash", "reinit.name"),
    ("resume={missing}", "resume"), ("resume={file}", "resume"), ("resume={not_a_run}", "resume"),
    ("resume={broken}", "resume"), ("resume={partial}", "resume"), ("resume={never}", "resume"),
    ("resume={foreign}", "resume"),
    ("load_checkpoint={missing}", "load_checkpoint"), ("load_checkpoint={file}", "load_checkpoint"),
    ("load_checkpoint={empty}", "load_checkpoint"), ("load_checkpoint={other_net}", "load_checkpoint"),
    ("load_checkpoint={other_agent}", "load_checkpoint"), ("resume={never} load_checkpoint={file}", "resume"),
    ("run_dir={file}/run", "run_dir"), ("resume=auto run_dir=runs/${{now:%H%M%S}}", "run_dir"),
]


def run_in_process(overrides: list[str], capsys) -> tuple[int, str]:
    """train.py's entry point (Hydra included) in this process: exit code and everything it printed."""
    # Hydra's logging set-up closes every existing log handler, and absl's handler (absl comes with rliable and
    # TensorBoard, imported by earlier tests) then closes its stream unless that is the current sys.stderr: it
    # would close the pytest capture stream it was created under. Point it at the current one.
    if "absl.logging" in sys.modules:
        sys.modules["absl.logging"].get_absl_handler().python_handler.stream = sys.stderr
    argv = sys.argv
    sys.argv = [str(ROOT / "train.py"), *overrides]
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")  # as `python train.py`, for Hydra's paths
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return code, out.out + out.err


def check_refusal(code: int, output: str, key: str, made: list[Path]) -> None:
    lines = output.strip().splitlines()
    assert code == 2, output
    # A damaged or foreign checkpoint set aside on the way is named in a warning line of its own.
    errors = [line for line in lines if not line.startswith("warning: ")]
    assert "Traceback" not in output and len(errors) == 1, output
    assert errors[0].startswith("error: ") and key in errors[0] and len(errors[0]) < 800, errors[0]
    assert made == [], made


def test_the_fuzz_covers_at_least_60_bad_values():
    assert len(CASES) >= 60


@pytest.mark.parametrize(("override", "key"), CASES, ids=[c for c, _ in CASES])
def test_bad_value_is_one_line_naming_the_key_and_writes_nothing(tmp_path, monkeypatch, capsys, override, key):
    paths = fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    # resume= takes no other overrides; the cases give it alone, so that its own checks are what refuses them
    base = [] if override.startswith("resume={") else [*BASE, f"run_dir={tmp_path}/run"]
    overrides = [*base, *override.format(**paths).split()]
    code, output = run_in_process(overrides, capsys)
    check_refusal(code, output, key, [p for p in tmp_path.iterdir() if p.name != "fixtures"])


SUBPROCESS_CASES = ["agent=dqn", "+foo=1", "device=cuda", "replay_ratio=0.0004", "load_checkpoint={file}"]


@pytest.mark.parametrize("override", SUBPROCESS_CASES)
def test_the_same_through_a_real_subprocess(tmp_path, override):
    paths = fixtures(tmp_path)
    key = dict(CASES)[override]
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *BASE, f"run_dir={tmp_path}/run",
                             *override.format(**paths).split()], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    check_refusal(result.returncode, result.stdout + result.stderr, key,
                  [p for p in tmp_path.iterdir() if p.name != "fixtures"])


def test_a_tensorboard_write_failure_ends_the_run_in_one_line_naming_the_last_good_checkpoint(
        tmp_path, monkeypatch, capsys):
    from torch.utils.tensorboard import SummaryWriter

    add_scalar, calls = SummaryWriter.add_scalar, []

    def fills_the_disk(self, *args, **kwargs):  # TensorBoard's writer once the disk is full
        calls.append(1)
        if len(calls) > 400:
            raise OSError(errno.ENOSPC, "No space left on device")
        return add_scalar(self, *args, **kwargs)

    monkeypatch.setattr(SummaryWriter, "add_scalar", fills_the_disk)
    monkeypatch.chdir(tmp_path)
    code, output = run_in_process([*BASE, f"run_dir={tmp_path}/run", "quiet=true"], capsys)
    good = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 1 and "Traceback" not in output and len(errors) == 1, output
    assert "No space left on device" in errors[0] and f"last good checkpoint: {good[-1]}" in errors[0], errors[0]
