"""The loop's doors: non-finite values named at their source, signals honoured within an evaluation step,
checkpoints that survive a crashing evaluation or video, a signal in teardown that changes nothing."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

import loop.logger
import loop.runner
from envs import make_vector
from loop import checkpoint
from loop.evaluation import eval_env_config
from loop.guard import NonFiniteError
from loop.progress import Progress
from loop.runner import Trainer
from tests.loop.test_runner import fake_agent_and_replay, make_cfg  # noqa: F401  (autouse fixture)

NAN = float("nan")


def poison_step(envs, when, poison):
    step = envs.step

    def poisoned(actions):
        obs, rewards, terminations, truncations, infos = step(actions)
        if when():
            obs, rewards, infos = poison(obs.copy(), rewards.copy(), infos)
        return obs, rewards, terminations, truncations, infos

    envs.step = poisoned


# ----------------------------------------------------------------------------- non-finite values
def test_nan_in_the_final_observation_is_named_before_it_enters_replay(tmp_path):
    trainer = Trainer(make_cfg(**{"reinit.name": "none"}), tmp_path)  # episodes of 25 env steps

    def poison(obs, rewards, infos):
        if infos.get("_final_obs", np.zeros(1, bool)).any():
            infos["final_obs"][0] = np.full(3, NAN, np.float32)
        return obs, rewards, infos

    poison_step(trainer.envs, lambda: True, poison)
    with pytest.raises(NonFiniteError, match=r"non-finite final observation \(info\['final_obs'\]\) from env\(s\) "
                                             r"\[0\] at env step 24; diagnostic checkpoint"):
        trainer.run()
    assert len(trainer.replay) == 24  # the poisoned transition never reached replay


def test_nan_in_the_first_reset_observation_is_named(tmp_path):
    trainer = Trainer(make_cfg(**{"reinit.name": "none", "env.num_envs": 2}), tmp_path)
    reset = trainer.envs.reset

    def poisoned_reset(**kwargs):
        obs, info = reset(**kwargs)
        obs = obs.copy()
        obs[1] = NAN
        return obs, info

    trainer.envs.reset = poisoned_reset
    with pytest.raises(NonFiniteError, match=r"non-finite reset observation from env\(s\) \[1\] at env step 0"):
        trainer.run()


def test_nan_reward_is_named(tmp_path):
    trainer = Trainer(make_cfg(**{"reinit.name": "none"}), tmp_path)
    poison_step(trainer.envs, lambda: trainer.env_steps == 7,
                lambda obs, rewards, infos: (obs, np.full_like(rewards, np.inf), infos))
    with pytest.raises(NonFiniteError, match=r"non-finite reward from env\(s\) \[0\] at env step 7"):
        trainer.run()


def test_nan_action_is_blamed_on_the_agent_not_the_env(tmp_path):
    trainer = Trainer(make_cfg(**{"reinit.name": "none", "env.num_envs": 2}), tmp_path)
    act = trainer.agent.act

    def act_poisoned(obs, *, env_steps, explore):
        actions = act(obs, env_steps=env_steps, explore=explore)
        if env_steps >= 20:
            actions[0] = NAN
        return actions

    trainer.agent.act = act_poisoned
    steps_before = []
    step = trainer.envs.step
    trainer.envs.step = lambda actions: (steps_before.append(trainer.env_steps), step(actions))[1]
    with pytest.raises(NonFiniteError, match=r"non-finite action from the agent \(not the env\), for env\(s\) \[0\] "
                                             r"at env step 20"):
        trainer.run()
    assert max(steps_before) == 18  # the env never saw the NaN action


def test_nan_evaluation_reward_stops_the_run_instead_of_logging_eval_nan(tmp_path):
    cfg = make_cfg(**{"reinit.name": "none"})
    trainer = Trainer(cfg, tmp_path)
    trainer.evaluator.envs = make_vector(cfg["env"], num_envs=1)
    poison_step(trainer.evaluator.envs, lambda: True,
                lambda obs, rewards, infos: (obs, np.full_like(rewards, NAN), infos))
    with pytest.raises(NonFiniteError, match=r"non-finite evaluation reward from eval env\(s\) \[0\] at env step 60"):
        trainer.run()
    assert (tmp_path / "checkpoints" / "nonfinite_step_000000000060.pt").is_file()
    assert not checkpoint.list_checkpoints(tmp_path / "checkpoints")  # nothing non-finite passes as good


# ----------------------------------------------------------------------------- signals
def slow_evaluation(trainer, seconds_per_step):
    """Eval env steps that take `seconds_per_step` (a long evaluation, as an untrained Atari agent's)."""
    evaluate = trainer.evaluator.evaluate

    def evaluate_slowly(agent, env_steps):
        if trainer.evaluator.envs is None:
            trainer.evaluator.envs = make_vector(trainer.evaluator.env_cfg, num_envs=1)
            step = trainer.evaluator.envs.step
            trainer.evaluator.envs.step = lambda actions: (time.sleep(seconds_per_step), step(actions))[1]
        return evaluate(agent, env_steps)

    trainer.evaluator.evaluate = evaluate_slowly


def signal_during_evaluation(trainer, signum, at_env_steps, delay=0.3):
    """Send `signum` `delay` seconds into the evaluation at `at_env_steps`; returns [time sent]."""
    evaluate, sent = trainer.evaluator.evaluate, []

    def evaluate_and_signal(agent, env_steps):
        if env_steps == at_env_steps and not sent:
            def send():
                sent.append(time.monotonic())
                os.kill(os.getpid(), signum)
            threading.Timer(delay, send).start()
        return evaluate(agent, env_steps)

    trainer.evaluator.evaluate = evaluate_and_signal
    return sent


def test_ctrl_c_during_evaluation_stops_within_an_eval_step_and_resume_redoes_it_exactly(tmp_path):
    cfg = make_cfg(**{"reinit.name": "none", "checkpoint.every_env_steps": 1000})
    straight = Trainer(cfg, tmp_path / "straight")
    expected = straight.run()

    trainer = Trainer(cfg, tmp_path / "stopped")
    slow_evaluation(trainer, 0.2)  # the evaluation at 60 would take 50 steps x 0.2 s = 10 s
    sent = signal_during_evaluation(trainer, signal.SIGINT, at_env_steps=60)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where pytest runs in a background job
    assert trainer.run() == {}
    assert time.monotonic() - sent[0] < 3.0
    path, state = checkpoint.load_latest(tmp_path / "stopped" / "checkpoints")
    assert path.name == "step_000000000060.pt" and state["eval_due"]
    assert signal.getsignal(signal.SIGINT) is before  # restored

    resumed = Trainer(cfg, tmp_path / "stopped")
    resumed.resume(state)
    assert resumed.run() == expected  # the fake agent's eval actions draw from torch's global generator
    assert torch.equal(resumed.agent.weight, straight.agent.weight)


def test_signal_during_the_final_evaluation_saves_once_and_exits_cleanly(tmp_path, monkeypatch):
    saved = []
    save = checkpoint.save
    monkeypatch.setattr(loop.runner.checkpoint, "save", lambda state, d, steps, keep: (
        saved.append((steps, state["eval_due"])), save(state, d, steps, keep))[1])
    cfg = make_cfg(**{"reinit.name": "none", "eval.every_env_steps": 1000})
    trainer = Trainer(cfg, tmp_path)
    slow_evaluation(trainer, 0.2)
    signal_during_evaluation(trainer, signal.SIGUSR1, at_env_steps=120)
    assert trainer.run() == {}
    assert saved == [(60, False), (120, True)]
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL


def test_signal_during_teardown_changes_nothing(tmp_path, monkeypatch):
    saved = []
    save = checkpoint.save
    monkeypatch.setattr(loop.runner.checkpoint, "save", lambda state, d, steps, keep: (
        saved.append(steps), save(state, d, steps, keep))[1])
    trainer = Trainer(make_cfg(**{"reinit.name": "none"}), tmp_path)
    close = trainer.envs.close
    trainer.envs.close = lambda: (os.kill(os.getpid(), signal.SIGUSR1), close())  # default action: kill
    figures = trainer.run()
    assert figures["eval/episodes"] == 2  # the finished run's result, not an early stop
    assert saved == [60, 120]


def test_the_stop_hint_is_printed_after_the_bar_is_closed(tmp_path, monkeypatch):
    trainer = Trainer(make_cfg(**{"reinit.name": "none", "quiet": False}), tmp_path)
    act = trainer._act
    trainer._act = lambda: (act(), trainer.env_steps == 30 and os.kill(os.getpid(), signal.SIGTERM))
    bar_open_at_message = []
    message = loop.logger.RunLogger.message
    monkeypatch.setattr(loop.logger.RunLogger, "message", lambda logger, text: (
        bar_open_at_message.append(logger.progress.bar is not None), message(logger, text)))
    trainer.run()
    assert bar_open_at_message == [False]


def test_stop_hint_names_what_works_when_envs_cannot_be_snapshotted(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop.runner, "supports_state", lambda envs: False)
    trainer = Trainer(make_cfg(**{"reinit.name": "none"}), tmp_path)
    act = trainer._act
    trainer._act = lambda: (act(), trainer.env_steps == 30 and os.kill(os.getpid(), signal.SIGTERM))
    trainer.run()
    out = capsys.readouterr().out
    assert f"resume={tmp_path}" not in out  # that command would fail
    assert f"load_checkpoint={tmp_path / 'checkpoints' / 'step_000000000030.pt'}" in out


# ----------------------------------------------------------------------------- crashes in evaluation
def test_a_failing_video_is_reported_and_the_run_keeps_its_checkpoints(tmp_path, capsys):
    trainer = Trainer(make_cfg(**{"reinit.name": "none", "eval.video": True}), tmp_path)
    calls = []

    def broken_video(agent, env_steps, path):
        calls.append(env_steps)
        raise ModuleNotFoundError("No module named 'pygame'")

    trainer.evaluator.record_video = broken_video
    assert trainer.run()["eval/episodes"] == 2
    assert calls == [60]  # reported once, then videos are off
    assert "[eval] video at env step 60 failed (ModuleNotFoundError" in capsys.readouterr().out
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "checkpoints")] == \
        ["step_000000000060.pt", "step_000000000120.pt"]


def test_a_crashing_final_evaluation_leaves_a_checkpoint_that_redoes_it(tmp_path):
    cfg = make_cfg(**{"reinit.name": "none", "checkpoint.every_env_steps": 1000})
    expected = Trainer(cfg, tmp_path / "straight").run()
    trainer = Trainer(cfg, tmp_path / "crashed")
    evaluate = trainer.evaluator.evaluate

    def crash_at_the_end(agent, env_steps):
        if env_steps == 120:
            evaluate(agent, env_steps)  # draws from the generators, then dies
            raise OSError("eval env died")
        return evaluate(agent, env_steps)

    trainer.evaluator.evaluate = crash_at_the_end
    with pytest.raises(OSError, match="eval env died"):
        trainer.run()
    path, state = checkpoint.load_latest(tmp_path / "crashed" / "checkpoints")
    assert path.name == "step_000000000120.pt" and state["eval_due"]
    resumed = Trainer(cfg, tmp_path / "crashed")
    resumed.resume(state)
    assert resumed.run() == expected
    assert not checkpoint.load_latest(tmp_path / "crashed" / "checkpoints")[1]["eval_due"]


# ----------------------------------------------------------------------------- evaluation limits
def test_atari_evaluation_episodes_stop_at_108k_frames_by_default():
    from loop.config import compose

    atari = compose("agent=dqn", "env=atari")["env"]
    assert eval_env_config(atari)["max_episode_steps"] * atari["kwargs"]["frame_skip"] == 108_000
    paper = compose("experiment=fire_dqn_atari")["env"]
    assert eval_env_config(paper)["max_episode_steps"] == 100_000  # the paper's protocol keeps its limit
    short = compose("agent=dqn", "env=atari", "env.kwargs.max_episode_frames=80")["env"]
    assert eval_env_config(short)["max_episode_steps"] == 20  # the cap never lengthens episodes (80 frames)
    odd = compose("agent=dqn", "env=atari", "env.kwargs.max_episode_frames=90")["env"]
    assert eval_env_config(odd)["max_episode_steps"] == 23  # ALE ends it on the step that crosses 90 frames


def test_runs_saved_before_the_evaluation_cap_keep_evaluating_without_it():
    from loop.config import compose, upgrade_saved_config

    today = compose("agent=dqn", "env=atari")
    before = {**today, "env": {k: v for k, v in today["env"].items() if k != "eval_max_episode_steps"}}
    assert upgrade_saved_config(before)["env"]["eval_max_episode_steps"] is None


def test_the_evaluation_cap_ends_episodes_early(tmp_path):
    cfg = make_cfg(**{"reinit.name": "none", "env.eval_max_episode_steps": 10})
    trainer = Trainer(cfg, tmp_path)
    with trainer.evaluator:
        figures = trainer.evaluator.evaluate(trainer.agent, env_steps=0)
    assert figures["eval/episodic_length"] == 10  # training episodes last 25


def test_the_progress_bar_moves_during_a_long_evaluation(tmp_path, monkeypatch):
    monkeypatch.setattr(loop.logger, "Progress", functools.partial(Progress, refresh_seconds=0.05))
    trainer = Trainer(make_cfg(**{"reinit.name": "none", "quiet": False, "eval.every_env_steps": 1000}), tmp_path)
    slow_evaluation(trainer, 0.02)  # the final evaluation: 50 steps, ~1 s
    drawn = []
    evaluate = trainer.evaluator.evaluate

    def evaluate_watching_the_bar(agent, env_steps):
        bar = trainer.logger.progress.bar
        refresh = bar.refresh
        bar.refresh = lambda *a, **k: (drawn.append(bar.postfix), refresh(*a, **k))
        return evaluate(agent, env_steps)

    trainer.evaluator.evaluate = evaluate_watching_the_bar
    trainer.run()
    assert sum("evaluation" in postfix for postfix in drawn) >= 5
