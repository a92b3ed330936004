"""Adaptive trigger: it fires exactly when the signal crosses the threshold, never closer than the gap to
the last intervention (scheduled ones included), logs each firing with the value, and resumes exactly.

The fake agent's dormant ratio is (updates since its last intervention) / 40, and replay ratio 0.5 after
learning_starts=12 makes the updates at env step b equal (b - 12) // 2, so the expected firings below
follow by hand from the checks every 10 env steps and the threshold 0.5 (20 updates since the last one).
"""

from __future__ import annotations

import pytest
import torch

import agents
from loop.config import ConfigError, validate
from loop.runner import Trainer
from loop.trigger import SIGNALS, value_network_metric
from tests.loop.test_runner import fake_agent_and_replay, make_cfg, scalars, straight_and_resumed  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def dormancy_agent(monkeypatch):
    monkeypatch.setitem(agents.AGENTS, "dormancy", "tests.loop.fakes:DormancyAgent")


def trigger_cfg(**overrides):
    return make_cfg(**{"agent.name": "dormancy", "reinit.trigger": "dormant", "reinit.threshold": 0.5,
                       "reinit.min_gap_env_steps": 0, "reinit.check_every_env_steps": 10, **overrides})


@pytest.mark.parametrize("num_envs", [1, 3])
def test_fires_exactly_when_the_signal_crosses(tmp_path, num_envs):
    trainer = Trainer(trigger_cfg(**{"env.num_envs": num_envs}), tmp_path)
    trainer.run()
    # Checks at 20..60 see 4, 9, 14, 19, 24 updates: 24 >= 20 fires at 60; then 100 sees 44 - 24 = 20.
    assert trainer.agent.reinits == [("fire", 24), ("fire", 44)]
    logged = scalars(tmp_path)
    assert [s for s, _ in logged["reinit/event"]] == [60, 100]
    assert logged["reinit/trigger_value"] == [(60, pytest.approx(24 / 40)), (100, 20 / 40)]  # float32 events
    assert [s for s, _ in logged["reinit/signal/dormant"]] == list(range(20, 121, 10))


def test_never_fires_closer_than_the_gap(tmp_path):
    trainer = Trainer(trigger_cfg(**{"reinit.min_gap_env_steps": 50}), tmp_path)
    trainer.run()
    # 100 crosses again (20 updates since 60) but is 40 < 50 env steps after 60; 110 (25 since) fires.
    assert trainer.agent.reinits == [("fire", 24), ("fire", 49)]
    signal = dict(scalars(tmp_path)["reinit/signal/dormant"])
    assert signal[100] >= 0.5  # crossed, refused by the gap


@pytest.mark.parametrize(("gap", "expected"), [(30, [19, 39]), (50, [19, 44])])
def test_composes_with_the_schedule_and_the_gap_counts_from_scheduled_interventions(tmp_path, gap, expected):
    trainer = Trainer(trigger_cfg(**{"reinit.at_env_steps": [50], "reinit.min_gap_env_steps": gap}), tmp_path)
    trainer.run()
    # Scheduled at 50 (19 updates); 90 has 20 since: fires when 40 >= gap, else 100 (25 since, gap 50).
    assert [updates for _, updates in trainer.agent.reinits] == expected


def test_resume_keeps_the_trigger_state(tmp_path):
    cfg = trigger_cfg(**{"reinit.min_gap_env_steps": 50, "checkpoint.every_env_steps": 40})
    # The step-80 checkpoint holds the firing at 60; without it the gap would allow firing at 100.
    straight, resumed = straight_and_resumed(cfg, tmp_path, stop_at=90, checkpoint_step=80)
    assert resumed.trigger.last_intervention == 60
    resumed.run()
    assert resumed.agent.reinits == straight.agent.reinits == [("fire", 24), ("fire", 49)]
    assert torch.equal(resumed.agent.weight, straight.agent.weight)
    logged, expected = scalars(tmp_path / "killed"), scalars(tmp_path / "straight")
    for tag in ("reinit/event", "reinit/trigger_value", "reinit/signal/dormant", "losses/fake"):
        assert logged[tag] == expected[tag], tag


def test_value_network_metric_reads_the_critic_or_the_q_network():
    assert value_network_metric({"plasticity/actor/dormant_0.025": 0.9, "plasticity/critic/dormant_0.025": 0.1},
                                "dormant_0.025") == 0.1
    assert value_network_metric({"plasticity/dormant_0.025": 0.3}, "dormant_0.025") == 0.3
    assert value_network_metric({"plasticity/actor/dfi": 9.0, "plasticity/critic/dfi": 4.0}, "dfi") == 4.0
    with pytest.raises(KeyError, match="dormant_0.025"):
        value_network_metric({"plasticity/fake": 0.0}, "dormant_0.025")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"reinit.trigger": "loss"}, f"reinit.trigger='loss' is unknown; allowed: null, {', '.join(SIGNALS)}"),
    ({"reinit.name": "none"}, "reinit.trigger=dormant needs an intervention"),
    ({"reinit.threshold": 1.5}, "reinit.threshold=1.5 must be null (the signal's default) or a number in [0, 1]"),
    ({"reinit.trigger": "dfi", "reinit.threshold": None}, "reinit.threshold=null: reinit.trigger=dfi has no default"),
    ({"reinit.trigger": "dfi", "reinit.threshold": -1}, "reinit.threshold=-1 must be null (the signal's default) or a "
                                                        "number in [0, inf] for reinit.trigger=dfi"),
    ({"reinit.min_gap_env_steps": -1}, "reinit.min_gap_env_steps=-1 must be an integer >= 0"),
    ({"reinit.check_every_env_steps": 0}, "reinit.check_every_env_steps=0 must be an integer >= 1"),
])
def test_trigger_config_errors_are_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate(trigger_cfg(**overrides))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_trigger_alone_is_a_valid_schedule():
    validate(trigger_cfg())
    validate(trigger_cfg(**{"reinit.trigger": "dfi", "reinit.threshold": 1e6}))


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_real_sac_critic_signal_fires_the_intervention(tmp_path, signal):
    from loop.config import compose

    cfg = compose("agent=sac", "env=pendulum", "replay.batch_size=16", "agent.net.hidden_dims=[16,16]",
                  "learning_starts=100", "total_env_steps=300", "eval.every_env_steps=300", "eval.episodes=1",
                  "env.max_episode_steps=50", "reinit=fire", f"reinit.trigger={signal}", "reinit.threshold=0.0",
                  "reinit.check_every_env_steps=100", "reinit.min_gap_env_steps=150", "quiet=true",
                  "device=cpu", "threads=1")
    validate(cfg)
    Trainer(cfg, tmp_path).run()
    logged = scalars(tmp_path)
    # Threshold 0 is always reached: checks at 200 and 300 (none at 100: nothing learnt yet); the gap of
    # 150 lets only the first one fire.
    assert [s for s, _ in logged[f"reinit/signal/{signal}"]] == [200, 300]
    assert [s for s, _ in logged["reinit/event"]] == [200]
    assert logged["reinit/trigger_value"][0][1] >= 0.0


def test_a_trigger_is_refused_for_an_intervention_with_a_per_run_limit():
    from loop.config import compose

    cfg = compose("agent=dqn", "env=atari", "env.game=breakout", "reinit=pi", "reinit.trigger=dormant")
    with pytest.raises(ConfigError, match=r"^reinit=pi applies at most 1 time\(s\) per run and reinit.trigger=dormant"):
        validate(cfg)
