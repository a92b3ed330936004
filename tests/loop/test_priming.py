"""Heavy priming: exactly N extra updates at learning_starts, on the warm-up's transitions only, then
ordinary training; an intervention scheduled at learning_starts follows them; resume stays exact."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from loop import checkpoint
from loop.config import ConfigError, validate
from loop.runner import Trainer
from tests.loop.test_runner import fake_agent_and_replay, make_cfg, scalars, straight_and_resumed  # noqa: F401  (fixture)

PRIMING = 7
LEARNING_STARTS = 12


def primed_cfg(**overrides):
    return make_cfg(**{"priming_updates": PRIMING, "reinit.name": "none", **overrides})


def record_updates(trainer):
    """Wrap agent.update to record (env step, replay size) at every call."""
    calls = []
    update = trainer.agent.update

    def recording(batch, **counters):
        calls.append((trainer.env_steps, len(trainer.replay)))
        return update(batch, **counters)

    trainer.agent.update = recording
    return calls


@pytest.mark.parametrize("num_envs", [1, 3])
def test_priming_does_exactly_n_extra_updates_on_the_warm_up_transitions(tmp_path, num_envs):
    trainer = Trainer(primed_cfg(**{"env.num_envs": num_envs}), tmp_path)
    calls = record_updates(trainer)
    trainer.run()
    # Replay ratio 0.5 earns 0.5 * (env steps after learning_starts); priming adds exactly PRIMING.
    assert trainer.agent.updates == trainer.updates == PRIMING + (trainer.env_steps - LEARNING_STARTS) // 2
    primed = [c for c in calls if c[0] == LEARNING_STARTS]
    assert primed == [(LEARNING_STARTS, LEARNING_STARTS)] * PRIMING  # the replay then holds the warm-up only
    assert all(step > LEARNING_STARTS for step, _ in calls[PRIMING:])  # then ordinary training
    unprimed = Trainer(primed_cfg(**{"env.num_envs": num_envs, "priming_updates": 0}), tmp_path / "plain")
    unprimed.run()
    assert trainer.updates - unprimed.updates == PRIMING


def test_intervention_at_learning_starts_comes_right_after_priming(tmp_path):
    trainer = Trainer(primed_cfg(**{"reinit.name": "fire", "reinit.at_env_steps": [LEARNING_STARTS]}), tmp_path)
    trainer.run()
    assert trainer.agent.reinits == [("fire", PRIMING)]
    assert [s for s, _ in scalars(tmp_path)["reinit/event"]] == [LEARNING_STARTS]


@pytest.mark.parametrize("checkpoint_step", [6, 12, 18])  # before, right after, and after priming
def test_resume_around_priming_equals_uninterrupted_run(tmp_path, checkpoint_step):
    cfg = primed_cfg(**{"checkpoint.every_env_steps": 6, "checkpoint.keep": 20, "reinit.name": "fire",
                        "reinit.at_env_steps": [LEARNING_STARTS, 60]})
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop_at=30, checkpoint_step=checkpoint_step)
    resumed.run()
    assert resumed.agent.reinits == straight.agent.reinits == [("fire", PRIMING), ("fire", PRIMING + 24)]
    assert resumed.updates == straight.updates
    assert torch.equal(resumed.agent.weight, straight.agent.weight)


def test_sigterm_during_priming_checkpoints_after_it_and_resume_is_exact(tmp_path):
    """Priming is atomic: a preemption signal during it is served at the end of its vector step."""
    cfg = primed_cfg(**{"checkpoint.every_env_steps": 60})
    straight = Trainer(cfg, tmp_path / "straight")
    straight.run()
    trainer = Trainer(cfg, tmp_path / "killed")
    update = trainer.agent.update

    def update_then_signal(batch, **counters):
        if trainer.agent.updates == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return update(batch, **counters)

    trainer.agent.update = update_then_signal
    assert trainer.run() == {}
    [path] = checkpoint.list_checkpoints(tmp_path / "killed" / "checkpoints")
    state = checkpoint.load(path)
    assert state["env_steps"] == LEARNING_STARTS and state["updates"] == PRIMING
    resumed = Trainer(cfg, tmp_path / "killed")
    resumed.resume(state)
    resumed.run()
    assert torch.equal(resumed.agent.weight, straight.agent.weight) and resumed.updates == straight.updates


@pytest.mark.parametrize(("overrides", "message"), [
    ({"priming_updates": -1}, "priming_updates=-1 must be an integer >= 0"),
    ({"env.num_envs": 5}, "learning_starts=12 must be a multiple of env.num_envs * env.action_repeat = 5"),
    ({"replay.capacity": 8}, "replay.capacity=8 must hold the learning_starts=12"),
    ({"priming_updates": 0, "reinit.name": "fire", "reinit.at_env_steps": [12]}, "reinit.at_env_steps contains 12"),
])
def test_priming_config_errors_are_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate(primed_cfg(**overrides))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_priming_config_accepts_an_intervention_at_learning_starts():
    validate(primed_cfg(**{"reinit.name": "fire", "reinit.at_env_steps": [LEARNING_STARTS]}))
