"""Fail fast: each bad value is one line naming the key (and the allowed values), before any work."""

import pytest

import agents
from loop.config import ConfigError, validate
from tests.loop.test_runner import make_cfg


@pytest.fixture(autouse=True)
def counting_agent(monkeypatch):
    monkeypatch.setitem(agents.AGENTS, "counting", "tests.loop.fakes:CountingAgent")


def valid_cfg(**overrides):
    return make_cfg(**{"reinit.at_env_steps": [50], **overrides})


def test_the_base_config_is_valid():
    validate(valid_cfg())
    validate(valid_cfg(resume="auto", load_checkpoint="x.pt"))  # continues run_dir, else branches it


CASES = [
    ({"agent.name": "ppo"}, "agent.name='ppo' is unknown; allowed: sac, dqn"),
    ({"reinit.name": "dash"}, "reinit.name='dash' is unknown; allowed: none, fire"),
    ({"reinit.name": "redo"}, "reinit='redo' is not available for agent=counting"),
    ({"env.suite": "dmc"}, "env.suite='dmc' is unknown; allowed: gymnasium, atari"),
    ({"env.vectorization": "ray"}, "env.vectorization='ray' is unknown"),
    ({"env.suite": "atari", "env.game": "pong", "env.kwargs": {"backend": "python"}},
     "env.kwargs.backend='python' is unknown; allowed: vector, gymnasium"),
    ({"replay.kind": "prioritized"}, "replay.kind='prioritized' is unknown; allowed: auto, uniform, atari"),
    ({"device": "gpu"}, "device='gpu' is unknown"),
    ({"precision": "fp16"}, "precision='fp16' is unknown; allowed: fp32, bf16"),
    ({"seed": -1}, "seed=-1 must be an integer >= 0"),
    ({"total_env_steps": -5}, "total_env_steps=-5 must be an integer >= 1"),
    ({"total_env_steps": "1e6"}, "total_env_steps='1e6' must be an integer"),
    ({"env.num_envs": 0}, "env.num_envs=0 must be an integer >= 1"),
    ({"env.action_repeat": 1.5}, "env.action_repeat=1.5 must be an integer"),
    ({"eval.episodes": 0}, "eval.episodes=0 must be an integer >= 1"),
    ({"checkpoint.keep": 0}, "checkpoint.keep=0 must be an integer >= 1"),
    ({"replay.batch_size": True}, "replay.batch_size=True must be an integer"),
    ({"replay_ratio": 0}, "replay_ratio=0 must be a number > 0"),
    ({"replay_ratio": "2"}, "replay_ratio='2' must be a number > 0"),
    ({"learning_starts": 500}, "learning_starts=500 must be below total_env_steps=120"),
    ({"replay.capacity": 2}, "replay.capacity=2 must be >= replay.batch_size=4"),
    ({"learning_starts": 3}, "learning_starts=3 must be >= replay.batch_size * env.action_repeat = 4"),
    ({"reinit.at_env_steps": [1000]}, "reinit.at_env_steps contains 1000"),
    ({"reinit.at_env_steps": [5]}, "reinit.at_env_steps contains 5"),
    ({"reinit.every_env_steps": 10}, "reinit.every_env_steps=10 must exceed learning_starts=12"),
    ({"reinit.every_env_steps": -100}, "reinit.every_env_steps=-100 must be an integer >= 1"),
    ({"reinit.at_env_steps": []}, "reinit=fire is never applied"),
    ({"env.max_episode_steps": 0}, "env.max_episode_steps=0 must be an integer >= 1"),
    ({"resume": "runs/a", "load_checkpoint": "x.pt"}, "resume and load_checkpoint"),
    ({"threads": 0}, "threads=0 must be auto or an integer >= 1"),
    ({"eval.episodes": None, "eval.max_env_steps": None}, "eval.episodes=null needs eval.max_env_steps"),
    ({"eval.video": True, "eval.video_max_steps": 0}, "eval.video_max_steps=0 must be an integer >= 1"),
    ({"env.suite": "atari", "env.game": "pacman"}, "env.game='pacman' is unknown; allowed: alien, amidar"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES, ids=[m.split("=")[0].split(" ")[0] for _, m in CASES])
def test_bad_value_gives_one_line_naming_the_key(overrides, message):
    cfg = valid_cfg(**overrides)
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    text = str(error.value)
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize("native", [False, True])
def test_bf16_is_refused_where_the_device_would_emulate_it(monkeypatch, native):
    monkeypatch.setattr("loop.config.native_bf16", lambda device: native)
    cfg = valid_cfg(precision="bf16", device="cpu")
    if native:
        validate(cfg)
        return
    refusal = r"^precision=bf16 needs native bf16 .* device=cpu has none.*allowed here: fp32$"
    with pytest.raises(ConfigError, match=refusal):
        validate(cfg)


def test_fp32_never_asks_about_bf16(monkeypatch):
    monkeypatch.setattr("loop.config.native_bf16", lambda device: pytest.fail("fp32 runs need no bf16 check"))
    validate(valid_cfg(precision="fp32"))


@pytest.mark.parametrize(("overrides", "expected"), [
    # 1M-step runs get the figures these keys defaulted to before `auto`
    ((), (5_000, 20_000, 100_000, 1_000)),
    # a short run: 5 % warm-up, but at least one batch (SAC 256 x action repeat 1)
    (("env=pendulum", "total_env_steps=3000"), (256, 300, 300, 30)),
    (("env=pendulum", "total_env_steps=3000", "env.action_repeat=2"), (512, 300, 300, 30)),
    # paper presets keep their explicit values
    (("experiment=fire_sac_hb",), (10_000, 20_000, 250_000, 1_000)),
    (("experiment=fire_dqn_atari",), (20_000, 250_000, 250_000, 1_000)),
    # the user's values win
    (("total_env_steps=3000", "learning_starts=1000", "eval.every_env_steps=1500"), (1_000, 1_500, 300, 30)),
])
def test_auto_schedules_are_relative_to_the_run_length(overrides, expected):
    from loop.config import compose

    cfg = compose(*overrides)
    got = (cfg["learning_starts"], cfg["eval"]["every_env_steps"], cfg["checkpoint"]["every_env_steps"],
           cfg["log"]["every_env_steps"])
    assert got == expected
    validate(cfg)


def test_dqn_sees_the_resolved_learning_starts():
    from loop.config import compose

    cfg = compose("agent=dqn", "env=atari", "total_env_steps=10000")
    assert cfg["learning_starts"] == cfg["agent"]["learning_starts"] == 500


def test_saved_configs_from_before_the_registry_are_read_in_todays_keys():
    from loop.config import compose, upgrade_saved_config

    today = compose("agent=dqn", "env=atari", "reinit=fire", "reinit.polar=svd", "reinit.reset_linear=false",
                    "reinit.at_env_steps=[600000]")
    old = {**today, "agent": {**today["agent"], "gamma": 0.99, "batch_size": 32},
           "replay": {k: v for k, v in today["replay"].items() if k not in ("gamma", "batch_size")},
           "reinit": {**{k: v for k, v in today["reinit"].items() if k not in ("polar", "reset_linear")},
                      "method": "svd", "linear": "orthogonalize"}}
    assert upgrade_saved_config(old) == today
    assert upgrade_saved_config(today) == today


def test_saved_configs_from_before_threads_auto_keep_the_count_torch_gave_them():
    import torch

    from loop.config import compose, upgrade_saved_config

    today = compose("agent=sac", "env=pendulum")
    assert today["threads"] == "auto"
    assert upgrade_saved_config({**today, "threads": None})["threads"] == torch.get_num_threads()
    assert upgrade_saved_config({**today, "threads": 3})["threads"] == 3
    validate(upgrade_saved_config({**today, "threads": None}))
