"""DQN with the MinAtar preset learns Breakout through train.py (slow: ~190 s of CPU on one thread; 15.5 min wall
on 2 cores shared at load 12)."""

import pytest

from tests.test_learning_dqn import eval_returns

# Uniform random actions on minatar-breakout-v0 (sticky actions 0.1): 0.43 points per episode over 500
# episodes (std 0.68, 95th percentile 2); the threshold is 4.6x that mean.
RANDOM_SCORE = 0.43
THRESHOLD = 2.0


@pytest.mark.slow
def test_minatar_dqn_beats_random_play_on_breakout_within_100k_frames(tmp_path):
    # The paper's DQN (experiment=minatar_dqn) scaled to a CPU budget: one update per 4 frames instead of
    # every frame, epsilon to 0.1 over the first 50k frames instead of 100k.
    overrides = ["experiment=minatar_dqn", "env.game=breakout", "total_env_steps=100000", "replay_ratio=0.25",
                 "agent.exploration_env_steps=50000", "eval.every_env_steps=25000", "eval.episodes=20",
                 "checkpoint.every_env_steps=100000", "threads=1", "quiet=true"]
    evals = eval_returns(overrides, tmp_path / "run")
    assert max(evals[-2:]) > THRESHOLD > 4 * RANDOM_SCORE, evals
