"""Exact resume of a continual-MinAtar DQN run: killed between checkpoints and resumed, it ends with the same
agent, replay and TensorBoard scalars as an uninterrupted run, across game switches with FIRE at each."""

from __future__ import annotations

from loop.config import compose
from tests.loop.test_dqn_atari_resume import KILLED_AT, TOTAL, assert_resume_is_exact

SWITCH = 60  # env steps; with 2 envs every sub-env switches after 30 of its own steps
TINY_CONTINUAL_RUN = (
    "experiment=minatar_dqn", "env=minatar_continual", "env.games=[breakout,space_invaders,seaquest]",
    f"env.switch_env_steps={SWITCH}", "env.num_envs=2", "env.eval_num_envs=1", "env.kwargs.sticky_action_prob=0.5",
    "seed=3", "device=cpu", "threads=1", "quiet=true", f"total_env_steps={TOTAL}", "learning_starts=32",
    "replay_ratio=0.25", "replay.capacity=400", "agent.target_update_env_steps=50", "agent.exploration_env_steps=60",
    "eval.every_env_steps=60", "eval.episodes=null", "eval.max_env_steps=20", "diagnostics.every_updates=12",
    "log.every_env_steps=20", "checkpoint.every_env_steps=40", "checkpoint.keep=2",
    "reinit=fire", "reinit.polar=svd", f"reinit.every_env_steps={SWITCH}",
)


def test_killed_and_resumed_continual_minatar_run_equals_uninterrupted_run(tmp_path):
    assert 80 < KILLED_AT < 2 * SWITCH  # killed mid-turn of the second game, after the step-80 checkpoint
    straight, expected = assert_resume_is_exact(compose(*TINY_CONTINUAL_RUN), tmp_path)
    assert [step for step, _ in expected["reinit/event"]] == [SWITCH, 2 * SWITCH]
    # the third game was played: only seaquest sets channels 6..9 (env steps 120-160)
    assert straight.replay.state_dict()["obs"][:, 6:].any()
