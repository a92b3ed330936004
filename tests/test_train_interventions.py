"""Interventions through train.py: a new one plugs in with its function, a registry entry and a YAML file,
the options a user types reach it, and the paper's two-stage protocol applies it once at load."""

import subprocess
import sys
from pathlib import Path

import torch

from loop import checkpoint

ROOT = Path(__file__).resolve().parents[1]
# The whole of a new intervention outside the product: its function and registry entry (one Python file)
# and its config (one YAML file, found through hydra.searchpath). It prints what it received.
TOY = '''
import runpy
import sys

sys.path.insert(0, sys.argv.pop(1))  # this checkout's train.py and packages

from dataclasses import dataclass  # noqa: E402

import torch  # noqa: E402

import fire.registry  # noqa: E402
from fire.options import option  # noqa: E402
from fire.report import Report  # noqa: E402


@dataclass(frozen=True)
class ScaleOptions(fire.registry.Options):
    factor: float = option(0.5, "every parameter is multiplied by this", gt=0.0)


@torch.no_grad()
def scale(net, options):
    before = sum(float(p.abs().sum()) for p in net.module.parameters())
    for p in net.module.parameters():
        p.mul_(options.factor)
    print(f"[toy] {net.name} factor={options.factor} reset_optimizer={options.reset_optimizer} "
          f"abs_sum_before={before!r}", flush=True)
    return Report("scale")


fire.registry.register(fire.registry.Intervention("scale", scale, ScaleOptions, doc="multiply parameters"))
sys.argv[0] = sys.path[0] + "/train.py"
runpy.run_path(sys.argv[0], run_name="__main__")  # exactly `python train.py ...`
'''
TOY_YAML = """defaults:
  - /reinit_common@_here_
  - _self_
name: scale
factor: 0.5
"""
# SAC on Pendulum, tiny: 400 env steps, learning from 200.
TINY = ["agent=sac", "env=pendulum", "learning_starts=200", "replay.batch_size=16", "agent.net.hidden_dims=[8]",
        "replay.capacity=1000", "eval.every_env_steps=400", "eval.episodes=1", "log.every_env_steps=200",
        "diagnostics.every_updates=0", "checkpoint.every_env_steps=400", "device=cpu", "threads=1", "quiet=true"]


def toy_train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    (tmp_path / "toy.py").write_text(TOY)
    (tmp_path / "toy_configs" / "reinit").mkdir(parents=True, exist_ok=True)
    (tmp_path / "toy_configs" / "reinit" / "scale.yaml").write_text(TOY_YAML)
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'toy_configs'}]"
    return subprocess.run([sys.executable, str(tmp_path / "toy.py"), str(ROOT), *TINY, searchpath, *overrides],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


def toy_lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    return {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("[toy]")}


def test_a_registered_intervention_runs_through_train_py_with_the_users_options(tmp_path):
    result = toy_train(tmp_path, "total_env_steps=400", "reinit=scale", "reinit.factor=0.25",
                       "reinit.at_env_steps=[300]", f"run_dir={tmp_path}/run")
    assert result.returncode == 0, result.stderr
    lines = toy_lines(result)
    assert set(lines) == {"actor", "critic"}  # the networks SAC declares
    # The user's factor and SAC's paper default for the null reset_optimizer reached the function.
    assert all("factor=0.25 reset_optimizer=True" in line for line in lines.values())
    assert "[reinit] scale at env step 300" in result.stdout
    # Bad toy options are refused at start-up like the product's own, before anything is written.
    bad = toy_train(tmp_path, "total_env_steps=400", "reinit=scale", "reinit.factor=-1",
                    "reinit.at_env_steps=[300]", f"run_dir={tmp_path}/bad")
    assert bad.returncode == 2 and "reinit.factor=-1 must be a number > 0.0" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_two_stage_protocol_branches_from_a_checkpoint_and_intervenes_once_at_load(tmp_path):
    stage1 = toy_train(tmp_path, "total_env_steps=400", "reinit=none", f"run_dir={tmp_path}/stage1")
    assert stage1.returncode == 0, stage1.stderr
    saved = tmp_path / "stage1" / "checkpoints" / "step_000000000400.pt"
    stage2 = toy_train(tmp_path, "total_env_steps=600", "reinit=scale", "reinit.factor=0.5",
                       "reinit.reset_optimizer=false", f"load_checkpoint={saved}", f"run_dir={tmp_path}/stage2")
    assert stage2.returncode == 0, stage2.stderr
    lines = toy_lines(stage2)
    assert set(lines) == {"actor", "critic"} and stage2.stdout.count("[reinit]") == 1
    assert "[reinit] scale at env step 400 (on load)" in stage2.stdout
    assert all("factor=0.5 reset_optimizer=False" in line for line in lines.values())
    # The intervention saw stage 1's trained weights: the branch loaded them first.
    agent = checkpoint.load(saved)["agent"]
    for network in ("actor", "critic"):
        trained = sum(float(t.abs().sum()) for t in agent[network].values() if t.dtype.is_floating_point)
        seen = float(lines[network].split("abs_sum_before=")[1])
        assert seen == torch.tensor(trained).item() or abs(seen - trained) < 1e-6 * trained, network
    final = checkpoint.load(tmp_path / "stage2" / "checkpoints" / "step_000000000600.pt")
    assert final["env_steps"] == 600 and final["updates"] > 200
