"""`threads: auto`: the tuner's choices, and the bit-identity at 1 and 2 threads it relies on."""

import contextlib

import gymnasium as gym
import numpy as np
import pytest
import torch

import fire.registry
import loop.runner
from agents import make_agent
from bench.fire_speed import dqn_batch, sac_batch
from loop.config import compose
from loop.runner import Trainer
from loop.threads import COUNTS, ThreadTuner, state_digest, updates_depend_on_threads
from replay.base import Batch
from tests.loop.test_dqn_atari_resume import FIRE_ACROSS_THE_STOP, assert_same_state, dqn_config, scalars


class Machine:
    """Seconds per env step for each thread count, changed by the test; records the counts set."""

    def __init__(self, pace: dict[int, float]):
        self.pace = pace
        self.set: list[int] = []

    def tuner(self, counts=(1, 2), **kwargs) -> ThreadTuner:
        return ThreadTuner(counts, window_seconds=1.0, first_gap=2, max_gap=8, set_threads=self.set.append, **kwargs)

    def run(self, tuner: ThreadTuner, windows: int) -> list[int]:
        """The count used in each of `windows` windows of one iteration each."""
        used = []
        for _ in range(windows):
            used.append(tuner.current)
            tuner.record(10, 10 * self.pace[tuner.current])
        return used


def test_times_both_counts_then_keeps_the_faster_and_retries_the_other_ever_less_often():
    machine = Machine({1: 0.2, 2: 0.1})  # idle: 2 threads twice as fast
    tuner = machine.tuner()
    used = machine.run(tuner, 30)
    # 2, then 1 (timed once each); then 2 for `gap` windows and 1 once, the gap doubling up to max_gap
    assert used[:2] == [2, 1]
    retries = [i for i in range(2, 30) if used[i] == 1]
    assert retries == [4, 9, 18, 27]  # after 2, 4, 8, 8 windows of the kept count
    assert machine.set[0] == 2


def test_switches_when_the_other_count_becomes_faster():
    machine = Machine({1: 0.2, 2: 0.1})
    tuner = machine.tuner()
    machine.run(tuner, 12)
    assert tuner.current == 2
    machine.pace = {1: 0.2, 2: 0.5}  # a busy process starts: spinning workers lose their core
    used = machine.run(tuner, 4)
    assert used == [2, 1, 1, 1]  # the slowdown of the kept count tries the other at once, which wins
    assert tuner.kept == 1


def test_a_window_needs_its_seconds_and_a_single_count_never_changes():
    machine = Machine({1: 0.2, 2: 0.1})
    tuner = machine.tuner()
    tuner.record(1, 0.4)
    tuner.record(1, 0.4)
    assert tuner.current == 2 and not tuner.pace  # 0.8 s: the window is still open
    tuner.record(1, 0.4)
    assert tuner.pace == {2: pytest.approx(0.4)} and tuner.current == 1
    alone = machine.tuner(counts=(1,))
    machine.run(alone, 20)
    assert alone.current == 1 and alone.switches == 0


# ---------------------------------------------------------------------------------------------- bit-identity
def minatar_batch(size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(0)
    obs = (torch.rand(size, 10, 10, 10, generator=g) < 0.1).to(torch.uint8)
    return Batch(obs=obs, actions=torch.randint(0, 6, (size,), generator=g), rewards=torch.randn(size, generator=g),
                 next_obs=obs.roll(1, 0), discounts=torch.full((size,), 0.99))


H1_OBS = gym.spaces.Box(-np.inf, np.inf, (51,), np.float32)  # h1-walk's spaces (bench.fire_speed's batches)
H1_ACTIONS = gym.spaces.Box(-1.0, 1.0, (19,), np.float32)
PRESETS = {  # name -> (overrides of the agent config, observation space, action space, batch)
    "sac-mlp": (("agent=sac", "env=h1-walk"), H1_OBS, H1_ACTIONS, sac_batch),
    "sac-simba": (("agent=sac", "agent/net=simba", "env=h1-walk"), H1_OBS, H1_ACTIONS, sac_batch),
    "sac-simba-narrow": (("agent=sac", "agent/net=simba", "env=h1-walk", "agent.net.critic_hidden_dim=64",
                          "agent.net.actor_hidden_dim=32"), H1_OBS, H1_ACTIONS, sac_batch),
    "dqn-atari": (("agent=dqn", "env=atari"), gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(18),
                  dqn_batch),
    "dqn-minatar": (("experiment=minatar_dqn",), gym.spaces.Box(0, 1, (10, 10, 10), np.uint8),
                    gym.spaces.Discrete(6), minatar_batch),
}


def _agent_and_batch(preset: str):
    overrides, obs_space, action_space, make_batch = PRESETS[preset]
    torch.manual_seed(0)
    return make_agent(compose(*overrides)["agent"], obs_space, action_space, torch.device("cpu")), make_batch()


def _run(threads: int, preset: str) -> tuple[str, dict]:
    """Build, update, measure and intervene with every intervention the agent supports, at `threads`."""
    torch.set_num_threads(threads)
    agent, batch = _agent_and_batch(preset)
    updates = 0
    # Plasticity injection last: it grows the network, which the interventions resetting to the init
    # snapshot then refuse (a run applies one intervention, so they never meet).
    supported = sorted(fire.registry.supported(agent.PROVIDES), key=lambda name: name == "pi")
    steps = [("none", {}), ("fire", {"polar": "svd"}), *((name, {}) for name in supported)]
    for name, options in steps:
        if name != "none":
            agent.reinit(name, options, batch)
        for _ in range(2):
            agent.update(batch, updates=updates, env_steps=updates)
            updates += 1
    diagnostics = agent.diagnostics(batch)
    return state_digest(agent.state_dict()), diagnostics


@contextlib.contextmanager
def onednn(enabled: bool):
    """Convolutions through oneDNN (torch's default on CPU) or through torch's own kernels."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


@pytest.mark.parametrize("preset,with_onednn", [
    # the paper's SimBa sizes: ~40 s, mostly its FIRE events; the narrow one runs the same code paths
    pytest.param(name, True, marks=pytest.mark.slow) if name == "sac-simba" else (name, True) for name in PRESETS
] + [(name, False) for name in PRESETS if name.startswith("dqn")])  # convolutions without oneDNN: our code alone
def test_every_update_intervention_and_diagnostic_is_bit_identical_at_1_and_2_threads(preset, with_onednn):
    before = torch.get_num_threads()
    try:
        with onednn(with_onednn):
            one, two = _run(1, preset), _run(2, preset)
    finally:
        torch.set_num_threads(before)
    assert one[0] == two[0], f"{preset}: agent state differs between 1 and 2 threads"
    assert one[1] == two[1], f"{preset}: diagnostics differ between 1 and 2 threads"


class CountDependentAgent:
    """An agent whose update rounds differently at 2 threads, as oneDNN's AVX-512 convolutions do."""

    def __init__(self, depends: bool):
        self.depends = depends
        self.weight = torch.ones(3)

    def update(self, batch, *, updates: int, env_steps: int):
        noise = torch.randn(3)  # draws from the global RNG, as SAC's action sampling does
        self.weight += noise * (1 + 1e-6 * (self.depends and torch.get_num_threads() == 2))

    def state_dict(self):
        return {"weight": self.weight, "nested": [{"w": self.weight * 2}]}


def test_the_digest_sees_one_ulp_a_dtype_a_shape_and_every_nested_value():
    w = torch.linspace(-1, 1, 6)
    state = {"net": {"w": w, "step": torch.tensor(3)}, "optim": [{"lr": 1e-3}], "bf16": w.bfloat16()}
    same = {"optim": [{"lr": 1e-3}], "net": {"step": torch.tensor(3), "w": w.clone()}, "bf16": w.bfloat16()}
    assert state_digest(state) == state_digest(same)
    for changed in ({**state, "net": {"w": torch.nextafter(w, w + 1), "step": torch.tensor(3)}},
                    {**state, "net": {"w": w.double(), "step": torch.tensor(3)}},
                    {**state, "net": {"w": w.view(2, 3), "step": torch.tensor(3)}},
                    {**state, "optim": [{"lr": 2e-3}]}):
        assert state_digest(changed) != state_digest(state)


@pytest.mark.parametrize("depends", [True, False])
def test_the_probe_finds_updates_that_depend_on_the_count_and_leaves_the_run_as_it_was(depends, restore_threads):
    agent = CountDependentAgent(depends)
    torch.set_num_threads(2)
    torch.manual_seed(7)
    assert updates_depend_on_threads(agent, None, COUNTS, updates=0, env_steps=0) is depends
    assert torch.equal(agent.weight, torch.ones(3))  # the copies were updated, not the agent
    assert torch.get_num_threads() == 2
    torch.manual_seed(7)
    expected = torch.randn(3)
    torch.manual_seed(7)
    updates_depend_on_threads(agent, None, COUNTS, updates=0, env_steps=0)
    assert torch.equal(torch.randn(3), expected)  # the global RNG is where it was


# ---------------------------------------------------------------------------------------------- a whole run
@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("with_onednn", [True, False])
def test_a_run_that_changes_its_thread_count_every_iteration_equals_a_one_thread_run(tmp_path, restore_threads,
                                                                                     with_onednn):
    """With oneDNN too: on AVX-512 CPUs its convolution gradients then go through ThreadInvariantConv2d."""
    cfg = dqn_config(*FIRE_ACROSS_THE_STOP)  # Pong: a 6-action head, the GEMM MKL splits by thread otherwise
    with onednn(with_onednn):
        pinned = Trainer({**cfg, "threads": 1}, tmp_path / "pinned")
        pinned.run()
        auto = Trainer({**cfg, "threads": "auto"}, tmp_path / "auto")
        auto.threads = ThreadTuner(COUNTS, window_seconds=0.0, first_gap=1, max_gap=1)  # a new count almost every step
        auto.run()
    assert auto.threads is not None and auto.threads.switches >= 10  # the probe found nothing to keep it at 1
    assert_same_state(auto.agent.state_dict(), pinned.agent.state_dict(), "agent")
    assert scalars(tmp_path / "auto") == scalars(tmp_path / "pinned")


def test_auto_keeps_one_thread_when_the_updates_depend_on_the_count(tmp_path, restore_threads, monkeypatch, capsys):
    probed = []
    monkeypatch.setattr(loop.runner, "updates_depend_on_threads", lambda agent, batch, counts, **kwargs: (
        probed.append(kwargs), True)[1])
    cfg = dqn_config(*FIRE_ACROSS_THE_STOP)
    auto = Trainer({**cfg, "threads": "auto"}, tmp_path / "auto")
    auto.threads = ThreadTuner(COUNTS, window_seconds=0.0, first_gap=1, max_gap=1)
    auto.run()
    assert len(probed) == 1 and probed[0]["updates"] == 0  # once, with the first update's arguments
    assert auto.threads is None and torch.get_num_threads() == 1
    assert "threads=auto keeps 1 thread" in capsys.readouterr().out
