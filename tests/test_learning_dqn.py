"""DQN learns Breakout through train.py, in either learner precision (slow: about 25 minutes each on 2 CPU cores)."""

import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from envs.atari import REFERENCE_SCORES
from tests.precisions import LEARNER_PRECISIONS

ROOT = Path(__file__).resolve().parents[1]


def eval_returns(overrides: list[str], run_dir: Path) -> list[float]:
    """Run train.py with `overrides` into run_dir; its eval/episodic_return values in order."""
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides, f"run_dir={run_dir}"],
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [e.value for e in events.Scalars("eval/episodic_return")]


@pytest.mark.slow
@pytest.mark.parametrize("precision", LEARNER_PRECISIONS)
def test_dqn_beats_random_play_on_breakout_within_200k_agent_steps(tmp_path, precision):
    # CleanRL-like settings scaled to a CPU budget: replay ratio 0.25 (Nature DQN), lr 1e-4, epsilon to
    # 0.01 over the first 100k steps. Breakout is the usual quick-learning game; Pong needs ~1M steps.
    overrides = [f"precision={precision}", "agent=dqn", "env=atari", "env.game=breakout", "total_env_steps=200000",
                 "learning_starts=10000", "replay_ratio=0.25", "replay.capacity=100000", "agent.learning_rate=1e-4",
                 "agent.exploration_env_steps=100000", "agent.target_update_env_steps=1000",
                 "eval.every_env_steps=50000", "eval.episodes=10", "checkpoint.every_env_steps=200000",
                 "threads=1", "quiet=true"]
    evals = eval_returns(overrides, tmp_path / "run")
    random_score = REFERENCE_SCORES["breakout"][0]  # 1.7 points per game
    assert max(evals[-2:]) > 2 * random_score, evals
