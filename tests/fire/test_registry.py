"""The intervention registry: configs/reinit/*.yaml mirror it, options are typed, agents' support is declared."""

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import agents
import fire.registry
from fire.registry import INTERVENTIONS, options_for
from loop.config import REINIT_SCHEDULE_KEYS, ConfigError, compose, validate

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "reinit"


def test_every_reinit_yaml_maps_one_to_one_onto_a_registry_entry():
    names = {p.stem for p in CONFIGS.glob("*.yaml")} - {"none"}
    assert names == set(INTERVENTIONS)
    for name, entry in INTERVENTIONS.items():
        composed = compose(f"reinit={name}")["reinit"]
        options = {k: v for k, v in composed.items() if k not in REINIT_SCHEDULE_KEYS}
        defaults = {f.name: f.default for f in dataclasses.fields(entry.options)}
        assert options == defaults, name
        assert OmegaConf.load(CONFIGS / f"{name}.yaml")["name"] == name


@pytest.mark.parametrize(("name", "values", "message"), [
    ("fire", {"iterations": -3}, "reinit.iterations=-3 must be an integer >= 1"),
    ("fire", {"iterations": 2.5}, "reinit.iterations=2.5 is not allowed; allowed: int"),
    ("fire", {"polar": "foo"}, "reinit.polar='foo' is not allowed; allowed: newton_schulz | svd"),
    ("fire", {"method": "svd"}, "reinit.method is unknown; allowed: reset_optimizer, reset_temperature, iterations, "
                                "polar, conv_scale, reset_linear"),
    ("snp", {"shrink": 1.5}, r"reinit.shrink=1.5 must be a number in \[0.0, 1.0\]"),
    ("snp", {"noise": "gaussian"}, "reinit.noise='gaussian' is not allowed; allowed: init | fresh"),
    ("redo", {"tau": -0.1}, "reinit.tau=-0.1 must be a number >= 0.0"),
    ("head_reset", {"layers": "head"}, "reinit.layers='head' is not allowed; allowed: list of str | null"),
    ("head_reset", {"layers": ["head"]}, "reinit.layers entry 'head' must be <network>.<module> with network one "
                                         "of q_network"),
    ("fire", {"reset_temperature": True}, "reinit.reset_temperature=True: agent=dqn has nothing it applies to"),
    ("dash", {}, "reinit.name='dash' is unknown; allowed: none, fire, reset, snp, head_reset, redo, pi"),
])
def test_bad_options_are_one_line_naming_the_key(name, values, message):
    with pytest.raises(ValueError, match=message):
        agents.agent_class("dqn").reinit_options(name, values, "dqn")


def test_null_options_take_the_agents_paper_defaults():
    dqn = agents.agent_class("dqn").reinit_options("fire", {"reset_optimizer": None}, "dqn")
    sac = agents.agent_class("sac").reinit_options("fire", {}, "sac")
    assert (dqn.reset_optimizer, dqn.reset_linear, dqn.reset_temperature) == (False, True, None)
    assert (sac.reset_optimizer, sac.reset_linear, sac.reset_temperature) == (True, False, True)
    explicit = options_for("snp", {"reset_linear": False, "shrink": 0.5}, agent="dqn", provides=(),
                           defaults={"reset_linear": True})
    assert (explicit.reset_linear, explicit.shrink) == (False, 0.5)


def test_support_follows_what_an_agent_provides():
    assert fire.registry.supported(agents.agent_class("sac").PROVIDES) == ["fire", "reset", "snp", "head_reset"]
    assert fire.registry.supported(agents.agent_class("dqn").PROVIDES) == list(INTERVENTIONS)
    with pytest.raises(ValueError, match="reinit='redo' is not available for agent=sac; allowed: none, fire, reset, "
                                         "snp, head_reset \\(redo needs an agent that feeds"):
        agents.agent_class("sac").reinit_options("redo", {}, "sac")


def dqn_cfg(*overrides):
    return compose("agent=dqn", "env=atari", "total_env_steps=600000", "learning_starts=1000", *overrides)


@pytest.mark.parametrize(("overrides", "message"), [
    (("reinit=pi", "reinit.every_env_steps=250000"),
     "reinit=pi applies at most 1 time\\(s\\) per run and this schedule has 2 events"),
    (("reinit=pi", "reinit.at_env_steps=[2000,3000]"), "has 2 events"),
    (("reinit=pi", "reinit.at_env_steps=[2000]", "load_checkpoint=x.pt"), "has 2 events"),
])
def test_pi_more_than_once_is_refused_at_start_up(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(dqn_cfg(*overrides))


@pytest.mark.parametrize("overrides", [("reinit=pi", "reinit.at_env_steps=[2000]"),
                                       ("reinit=pi", "reinit.every_env_steps=400000"),
                                       ("reinit=pi", "load_checkpoint=x.pt")])
def test_pi_once_is_accepted(overrides):
    validate(dqn_cfg(*overrides))


@pytest.mark.parametrize(("override", "message"), [
    ("agent.learning_rate=-1", "agent.learning_rate=-1 must be a number > 0.0"),
    ("agent.epsilon_end=1.5", r"agent.epsilon_end=1.5 must be a number in \[0.0, 1.0\]"),
    ("agent.hidden_dim=0", "agent.hidden_dim=0 must be an integer >= 1"),
    ("agent.loss=l1", "agent.loss='l1' is not allowed; allowed: huber | mse"),
    ("+agent.gamma=0.9", "agent.gamma is unknown; allowed: learning_rate"),
    ("replay.gamma=1.5", r"replay.gamma=1.5 must be a number in \[0, 1\]"),
])
def test_agent_keys_are_typed_at_start_up(override, message):
    with pytest.raises(ConfigError, match=message):
        validate(dqn_cfg(override))


def test_sac_net_presets_are_typed():
    with pytest.raises(ConfigError, match="agent.net.hidden_dims\\[1\\]=0 must be an integer >= 1"):
        validate(compose("agent=sac", "env=pendulum", "agent.net.hidden_dims=[8,0]"))
    with pytest.raises(ConfigError, match="agent.net.log_std_min=3.0 must be below agent.net.log_std_max=2.0"):
        validate(compose("agent=sac", "env=pendulum", "agent.net.log_std_min=3.0"))
    with pytest.raises(ConfigError, match="agent.net.expansion is unknown"):
        validate(compose("agent=sac", "env=pendulum", "+agent.net.expansion=4"))
