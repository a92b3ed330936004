"""train.py end to end, as users type it: TensorBoard contract, fail-fast errors, multirun sweeps, resume=auto."""

import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
# A DQN run small enough for CI: 600 env steps of Pong on 4 envs, learning from step 200, one update per 4
# env steps (100 Nature-CNN updates; the preset's one per env step took 4x as long).
TINY_DQN = ["agent=dqn", "env=atari", "env.game=pong", "total_env_steps=600", "learning_starts=200",
            "replay_ratio=0.25", "replay.capacity=2000", "eval.every_env_steps=600", "eval.episodes=null",
            "eval.max_env_steps=400", "checkpoint.every_env_steps=300", "log.every_env_steps=100",
            "diagnostics.every_updates=25", "quiet=true"]


def train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def scalar_tags(run_dir: Path) -> dict[str, list[int]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_dqn_run_writes_the_logging_contract(tmp_path):
    result = train(*TINY_DQN, "reinit=fire", "reinit.at_env_steps=[400]", f"run_dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tags = scalar_tags(tmp_path / "run")
    for prefix in ("charts/SPS", "losses/td_loss", "plasticity/", "reinit/event", "perf/threads"):
        assert any(t.startswith(prefix) for t in tags), (prefix, sorted(tags))
    assert tags["reinit/event"] == [400]
    assert max(tags["charts/SPS"]) <= 600
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*")) == [
        "step_000000000300.pt", "step_000000000600.pt"]


@pytest.mark.parametrize(("override", "message"), [
    ("agent=ppo", "Could not find 'agent/ppo'"),
    ("reinit=fire", "reinit=fire is never applied"),
    ("reinit=fire reinit.at_env_steps=[5000]", "reinit.at_env_steps contains 5000"),
    ("env.game=pacman", "env.game='pacman' is unknown"),
    ("replay.capacity=16", "replay.capacity=16 must be >= replay.batch_size=32"),
    # Once found only when the event fired, hours into a run:
    ("reinit=fire reinit.iterations=-3 reinit.every_env_steps=100000", "reinit.iterations=-3 must be an integer >= 1"),
    ("reinit=fire reinit.polar=foo reinit.at_env_steps=[400]",
     "reinit.polar='foo' is not allowed; allowed: newton_schulz | svd"),
    ("reinit=fire +reinit.method=svd reinit.at_env_steps=[400]", "reinit.method is unknown; allowed: "),
    ("reinit=snp reinit.shrink=1.5 reinit.at_env_steps=[400]", "reinit.shrink=1.5 must be a number in [0.0, 1.0]"),
    ("reinit=pi reinit.at_env_steps=[300,500]", "reinit=pi applies at most 1 time(s) per run"),
    ("agent.learning_rate=0", "agent.learning_rate=0 must be a number > 0.0"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, override, message):
    result = train(*TINY_DQN, *override.split(), f"run_dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_multirun_sweep_with_the_local_launcher_and_auto_resume(tmp_path):
    # MinAtar's DQN: the same loop as Atari's at a few seconds a run (the launcher is what is tested).
    tiny = ["experiment=minatar_dqn", "total_env_steps=600", "learning_starts=200", "eval.every_env_steps=600",
            "eval.episodes=1", "checkpoint.every_env_steps=300", "quiet=true"]
    sweep = ["-m", *tiny, "seed=0,1", "hydra/launcher=local", "resume=auto",
             f"run_dir={tmp_path}/runs/" + "${env.name}/seed${seed}"]
    first = train(*sweep, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = sorted(p.name for p in (tmp_path / "runs" / "minatar-breakout").iterdir())
    assert runs == ["seed0", "seed1"]
    # A re-launched sweep (e.g. a requeued SLURM array) finds finished runs and leaves them as they are.
    again = train(*sweep, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already finished at env step 600") == 2
    assert sorted(p.name for p in (tmp_path / "runs" / "minatar-breakout").iterdir()) == ["seed0", "seed1"]


def test_help_lists_the_config_groups(tmp_path):
    result = train("--help", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for group, option in [("agent", "dqn"), ("agent/net", "simba"), ("env", "h1-walk"), ("env", "atari_machado"),
                          ("reinit", "fire"), ("experiment", "fire_dqn_atari"), ("sweep", "atari26")]:
        assert any(line.startswith(f"{group}: ") and option in line for line in lines), (group, option)
    assert "python train.py agent=sac env=h1-walk" in result.stdout  # the usage header
    options = [o for line in lines if ": " in line and "=" not in line for o in line.split(": ", 1)[1].split(", ")]
    assert "_common" not in options and "_atari" not in options  # shared defaults are not choices
    # Every typed key with its bounds and doc, generated from the agents' and interventions' dataclasses.
    for line in ("agent.tau: float in (0.0, 1.0]  Polyak rate", "agent.epsilon_end: float in [0.0, 1.0]",
                 "reinit.iterations: int >= 1 (default 10)  Newton-Schulz steps", "reinit=pi: plasticity injection"):
        assert line in result.stdout, line


def test_warm_start_branches_onto_another_game_with_the_same_spaces_and_refuses_other_spaces(tmp_path):
    # The warm-start protocol (experiment=warmstart_minatar_dqn): stage 1 on breakout, stage 2 on
    # space_invaders; both have MinAtar's 6 actions and 6 padded channels, so the networks fit both.
    tiny = ["experiment=warmstart_minatar_dqn", "learning_starts=200", "eval.every_env_steps=100000",
            "eval.episodes=1", "checkpoint.every_env_steps=100000", "quiet=true"]
    stage1 = train(*tiny, "env.game=breakout", "total_env_steps=400", f"run_dir={tmp_path}/stage1", cwd=tmp_path)
    assert stage1.returncode == 0, stage1.stderr
    saved = tmp_path / "stage1" / "checkpoints" / "step_000000000400.pt"
    stage2 = train(*tiny, "total_env_steps=600", "reinit=fire", f"load_checkpoint={saved}",
                   f"run_dir={tmp_path}/stage2", cwd=tmp_path)
    assert stage2.returncode == 0, stage2.stderr
    assert "[reinit] fire at env step 400 (on load)" in stage2.stdout
    # Without the padding, space_invaders' observations have 6 channels and breakout's network takes 4.
    other = train(*tiny, "env.game=breakout", "env.kwargs.channels=null", "total_env_steps=600",
                  f"load_checkpoint={saved}", f"run_dir={tmp_path}/other", cwd=tmp_path)
    assert other.returncode == 2 and "holds networks of another shape" in other.stderr
    assert "trained on env.id=minatar-breakout-v0" in other.stderr and not (tmp_path / "other").exists()
