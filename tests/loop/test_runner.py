"""The loop's contract: exact intervention boundaries, replay ratio, logging tags, exact resume."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import agents
import loop.runner
from loop import checkpoint
from loop.runner import Trainer
from tests.loop.fakes import ListReplay


@pytest.fixture(autouse=True)
def fake_agent_and_replay(monkeypatch):
    monkeypatch.setitem(agents.AGENTS, "counting", "tests.loop.fakes:CountingAgent")
    monkeypatch.setattr(loop.runner, "make_replay", lambda cfg, *a, gamma, seed, **k: ListReplay(gamma, seed))


def make_cfg(**overrides):
    cfg = {
        "seed": 3, "device": "cpu", "precision": "fp32", "threads": 1, "total_env_steps": 120, "learning_starts": 12,
        "replay_ratio": 0.5, "priming_updates": 0,
        "agent": {"name": "counting"},
        "env": {"name": "pendulum", "id": "Pendulum-v1", "suite": "gymnasium", "num_envs": 1,
                "vectorization": "sync", "action_repeat": 1, "eval_num_envs": 1, "max_episode_steps": 25,
                "kwargs": {}},
        "reinit": {"name": "fire", "every_env_steps": None, "at_env_steps": [], "on_load": True, "trigger": None,
                   "threshold": None, "min_gap_env_steps": 50, "check_every_env_steps": 10},
        "replay": {"kind": "uniform", "capacity": 1000, "n_step": 1, "gamma": 0.9, "batch_size": 4},
        "eval": {"every_env_steps": 60, "episodes": 2, "max_env_steps": None},
        "diagnostics": {"every_updates": 10},
        "log": {"every_env_steps": 20},
        "checkpoint": {"every_env_steps": 60, "keep": 5},
        "quiet": True, "resume": None, "load_checkpoint": None,
    }
    for key, value in overrides.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


@pytest.mark.parametrize("num_envs", [1, 3])
@pytest.mark.parametrize("action_repeat", [1, 2])
def test_interventions_fire_exactly_on_env_step_boundaries(tmp_path, num_envs, action_repeat):
    cfg = make_cfg(**{"env.num_envs": num_envs, "env.action_repeat": action_repeat,
                      "reinit.every_env_steps": 50, "reinit.at_env_steps": [77]})
    trainer = Trainer(cfg, tmp_path)
    trainer.run()
    # An event at env step b follows exactly the updates earned by env steps (learning_starts, b].
    expected = [("fire", int(0.5 * (b - 12))) for b in (50, 77, 100)]
    assert trainer.agent.reinits == expected
    assert trainer.env_steps >= 120 and trainer.env_steps % (num_envs * action_repeat) == 0


def test_replay_ratio_counts_updates_per_env_step(tmp_path):
    trainer = Trainer(make_cfg(**{"replay_ratio": 2, "env.num_envs": 3, "reinit.name": "none"}), tmp_path)
    trainer.run()
    assert trainer.updates == trainer.agent.updates == 2 * (trainer.env_steps - 12)


def test_truncation_passes_the_true_final_observation_to_replay(tmp_path):
    trainer = Trainer(make_cfg(**{"reinit.name": "none", "env.max_episode_steps": 10}), tmp_path)
    trainer.run()
    rows = trainer.replay.rows
    for step in (9, 19, 29):  # the last transition of each 10-step episode
        obs, _, _, next_obs, terminated = rows[step]
        assert not terminated
        # Pendulum's obs is (cos, sin, velocity): a real successor is continuous with its predecessor,
        # a reset observation is not (the loop would have stored the next episode's first obs).
        assert abs(next_obs[2] - obs[2]) < 1.5 and next_obs.tolist() != rows[step + 1][0].tolist()


def scalars(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_logs_follow_the_tensorboard_contract(tmp_path):
    Trainer(make_cfg(**{"reinit.at_env_steps": [40]}), tmp_path).run()
    tags = scalars(tmp_path)
    for tag in ("charts/episodic_return", "charts/episodic_length", "charts/SPS", "losses/fake",
                "eval/episodic_return", "plasticity/fake", "reinit/event"):
        assert tag in tags, tag
    assert [s for s, _ in tags["reinit/event"]] == [40]
    assert [s for s, _ in tags["eval/episodic_return"]] == [60, 120]
    assert all(length == 25 for _, length in tags["charts/episodic_length"])


def straight_and_resumed(cfg, tmp_path, stop_at: int, checkpoint_step: int) -> tuple[Trainer, Trainer]:
    """An uninterrupted run, and one stopped at env step `stop_at` then resumed from its checkpoint at
    `checkpoint_step` (logs in tmp_path/straight and tmp_path/killed)."""
    straight = Trainer(cfg, tmp_path / "straight")
    straight.run()
    first = Trainer(cfg, tmp_path / "killed")
    first.total_env_steps = stop_at
    first.run()
    resumed = Trainer(cfg, tmp_path / "killed")
    resumed.resume(checkpoint.load(tmp_path / "killed" / "checkpoints" / f"step_{checkpoint_step:012d}.pt"))
    return straight, resumed


@pytest.mark.parametrize("num_envs", [1, 2])
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, num_envs):
    cfg = make_cfg(**{"env.num_envs": num_envs, "reinit.at_env_steps": [90], "checkpoint.every_env_steps": 40})
    straight = Trainer(cfg, tmp_path / "straight")
    straight.run()

    first = Trainer(cfg, tmp_path / "killed")
    first.total_env_steps = 60  # stands in for a run killed after its step-40 checkpoint and some more steps
    first.run()
    path = checkpoint.list_checkpoints(tmp_path / "killed" / "checkpoints")[0]
    assert path.name == "step_000000000040.pt"
    (tmp_path / "killed" / "checkpoints" / "step_000000000060.pt").unlink()
    resumed = Trainer(cfg, tmp_path / "killed")
    resumed.resume(checkpoint.load(path))
    resumed.run()

    assert resumed.agent.reinits == straight.agent.reinits
    assert torch.equal(resumed.agent.weight, straight.agent.weight)
    assert len(resumed.replay) == len(straight.replay)
    for a, b in zip(resumed.replay.rows, straight.replay.rows, strict=True):
        assert all((x == y).all() for x, y in zip(a, b, strict=True))
    logged, expected = scalars(tmp_path / "killed"), scalars(tmp_path / "straight")
    for tag in ("charts/episodic_return", "eval/episodic_return", "losses/fake"):
        assert logged[tag] == expected[tag], tag


def test_sigterm_checkpoints_and_stops_then_resume_finishes(tmp_path):
    import os
    import signal

    cfg = make_cfg(**{"reinit.name": "none"})
    trainer = Trainer(cfg, tmp_path)
    act = trainer._act

    def act_then_signal():
        act()
        if trainer.env_steps == 30:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer._act = act_then_signal
    assert trainer.run() == {}
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "checkpoints")] == ["step_000000000030.pt"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    resumed = Trainer(cfg, tmp_path)
    resumed.resume(checkpoint.load_latest(tmp_path / "checkpoints")[1])
    assert resumed.run()["eval/episodic_return"] < 0


def test_ctrl_c_checkpoints_and_stops_and_a_second_one_would_interrupt(tmp_path):
    import os
    import signal

    trainer = Trainer(make_cfg(**{"reinit.name": "none"}), tmp_path)
    act, handlers_seen = trainer._act, []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where pytest runs in a background job

    def act_then_interrupt():
        act()
        if trainer.env_steps == 30:
            os.kill(os.getpid(), signal.SIGINT)
            handlers_seen.append(signal.getsignal(signal.SIGINT))

    trainer._act = act_then_interrupt
    assert trainer.run() == {}
    assert handlers_seen == [signal.default_int_handler]  # armed for an immediate second Ctrl-C
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "checkpoints")] == ["step_000000000030.pt"]
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_submitit_style_handler_runs_after_our_checkpoint(tmp_path):
    import os
    import signal

    trainer = Trainer(make_cfg(**{"reinit.name": "none"}), tmp_path)
    act, seen = trainer._act, []

    def act_then_signal():
        act()
        if trainer.env_steps == 30:
            os.kill(os.getpid(), signal.SIGUSR2)

    def requeue(signum, _frame):  # what submitit's handler does: requeue, relying on our checkpoint
        seen.append((signum, [p.name for p in checkpoint.list_checkpoints(tmp_path / "checkpoints")]))

    trainer._act = act_then_signal
    previous = signal.signal(signal.SIGUSR2, requeue)
    try:
        assert trainer.run() == {}
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert seen == [(signal.SIGUSR2, ["step_000000000030.pt"])]


def test_nan_loss_stops_with_named_metric_and_keeps_good_checkpoint(tmp_path):
    cfg = make_cfg(**{"reinit.name": "none", "checkpoint.every_env_steps": 20})
    trainer = Trainer(cfg, tmp_path)
    update = trainer.agent.update

    def update_poisoned(batch, **counters):
        metrics = dict(update(batch, **counters))
        if trainer.env_steps > 30:
            metrics["losses/fake"] = torch.tensor(float("nan"))
        return metrics

    trainer.agent.update = update_poisoned
    with pytest.raises(loop.runner.NonFiniteError, match=r"non-finite losses/fake by env step 40 "):
        trainer.run()
    directory = tmp_path / "checkpoints"
    assert [p.name for p in checkpoint.list_checkpoints(directory)] == ["step_000000000020.pt"]
    assert (directory / "nonfinite_step_000000000040.pt").is_file()
    checkpoint.load(directory / "step_000000000020.pt")


def test_nan_observation_stops_naming_the_env(tmp_path):
    trainer = Trainer(make_cfg(**{"reinit.name": "none", "env.num_envs": 2}), tmp_path)
    step = trainer.envs.step

    def step_poisoned(actions):
        obs, *rest = step(actions)
        if trainer.env_steps >= 10:
            obs = obs.copy()
            obs[1, 0] = float("inf")
        return (obs, *rest)

    trainer.envs.step = step_poisoned
    with pytest.raises(loop.runner.NonFiniteError, match=r"non-finite observation from env\(s\) \[1\] at env step 10"):
        trainer.run()


def test_evaluation_with_a_step_budget_counts_only_finished_episodes(tmp_path):
    # The FIRE DQN protocol: evaluate a fixed number of env steps, average the episodes that finished.
    cfg = make_cfg(**{"eval.episodes": None, "eval.max_env_steps": 60, "env.eval_num_envs": 2,
                      "reinit.name": "none"})
    trainer = Trainer(cfg, tmp_path)
    with trainer.evaluator:
        figures = trainer.evaluator.evaluate(trainer.agent, env_steps=0)
    # 2 envs x 30 steps each; episodes last 25 steps, so each env finishes exactly one.
    assert figures["eval/episodes"] == 2 and figures["eval/episodic_length"] == 25


def test_warm_up_actions_are_the_uniform_draws_of_the_loop_generator():
    space = gym.spaces.Box(np.array([-1.0, 0.0, -3.0], np.float32), np.array([1.0, 2.0, -2.0], np.float32))
    actions = loop.runner.random_actions(space, 1000, np.random.default_rng(7))
    expected = np.random.default_rng(7).uniform(space.low, space.high, size=(1000, 3)).astype(np.float32)
    assert actions.dtype == np.float32 and actions.shape == (1000, 3)
    np.testing.assert_array_equal(actions, expected)
    assert all(space.contains(a) for a in actions)


def test_the_users_intervention_options_reach_the_agent_typed(tmp_path):
    cfg = make_cfg(**{"reinit.at_env_steps": [40], "reinit.iterations": 3, "reinit.polar": "svd",
                      "reinit.reset_optimizer": None})
    trainer = Trainer(cfg, tmp_path)
    trainer.run()
    (options,) = trainer.agent.options
    # The user's values, and the agent's default for the null one.
    assert (type(options).__name__, options.iterations, options.polar, options.reset_optimizer) == (
        "FireOptions", 3, "svd", False)
