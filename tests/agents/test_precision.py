"""precision=bf16: encoders compute in bf16 during updates only; heads, losses, weights and acting stay fp32."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from agents.dqn import DQN
from agents.precision import OutputLinear, update_autocast
from agents.sac import SAC
from loop.config import compose
from tests.agents.test_dqn import random_batch as atari_batch
from tests.agents.test_sac import OBS_SPACE, random_batch

ATARI_OBS = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def sac(precision: str) -> SAC:
    cfg = compose("agent=sac", "env=pendulum", "agent.net.hidden_dims=[64,64]")["agent"]
    torch.manual_seed(0)
    return SAC(OBS_SPACE, gym.spaces.Box(-2.0, 2.0, (1,), np.float32), "cpu", precision=precision, **cfg)


def dqn(precision: str) -> DQN:
    torch.manual_seed(0)
    return DQN(ATARI_OBS, gym.spaces.Discrete(4), "cpu", precision=precision,
               **compose("agent=dqn", "env=atari")["agent"])


def output_dtypes(networks: dict[str, nn.Module], run) -> dict[str, set[torch.dtype]]:
    """{layer name: dtypes of its outputs} over the Linear/Conv2d layers while run() executes."""
    seen: dict[str, set[torch.dtype]] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, out, key=f"{net}.{name}": seen.setdefault(key, set()).add(out.dtype))
        for net, network in networks.items()
        for name, module in network.named_modules()
        if isinstance(module, nn.Linear | nn.Conv2d)
    ]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def test_output_linear_is_a_float32_linear_inside_autocast():
    torch.manual_seed(0)
    hidden, plain, output = nn.Linear(16, 16), nn.Linear(16, 3), OutputLinear(16, 3)
    output.load_state_dict(plain.state_dict())
    x = torch.randn(8, 16)
    assert torch.equal(output(x), plain(x))  # no autocast: a plain Linear
    with update_autocast(torch.device("cpu"), "bf16"):
        features = hidden(x)
        assert features.dtype == torch.bfloat16 and plain(features).dtype == torch.bfloat16  # autocast is on
        y = output(features)
    assert y.dtype == torch.float32
    assert torch.equal(y, plain(features.float()))


def test_fp32_autocast_context_changes_nothing():
    with update_autocast(torch.device("cpu"), "fp32"):
        assert nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32


@pytest.mark.parametrize("make", [sac, dqn], ids=["sac", "dqn"])
def test_bf16_update_runs_hidden_layers_in_bf16_and_heads_in_fp32(make):
    agent = make("bf16")
    batch = random_batch(64) if isinstance(agent, SAC) else atari_batch(8)
    dtypes = output_dtypes(agent.networks if isinstance(agent, SAC) else {"q": agent.q_network},
                           lambda: agent.update(batch, updates=0, env_steps=0))
    heads = {name for name in dtypes if isinstance(dict(_modules(agent))[name], OutputLinear)}
    assert heads and all(dtypes[name] == {torch.float32} for name in heads), dtypes
    hidden = set(dtypes) - heads
    assert hidden and all(dtypes[name] == {torch.bfloat16} for name in hidden), dtypes
    params = [p for network in _networks(agent).values() for p in network.parameters()]
    assert all(p.dtype == torch.float32 for p in params)


@pytest.mark.parametrize("make", [sac, dqn], ids=["sac", "dqn"])
def test_acting_never_autocasts(make):
    agent = make("bf16")
    obs = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32) if isinstance(agent, SAC) else \
        np.random.default_rng(0).integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    if isinstance(agent, DQN):
        agent.cfg = dataclasses.replace(agent.cfg, epsilon_start=0.0)  # greedy, so the network runs
    dtypes = output_dtypes(_networks(agent), lambda: agent.act(obs, env_steps=0, explore=True))
    assert dtypes and all(d == {torch.float32} for d in dtypes.values()), dtypes


@pytest.mark.parametrize("make", [sac, dqn], ids=["sac", "dqn"])
def test_bf16_update_matches_fp32_to_bf16_accuracy(make):
    """Same initial weights and batch: the first update's losses agree to bf16's ~3 significant digits,
    and the weight steps point the same way (Adam's first step is lr * sign(grad), so a few small
    gradients may flip; the step vectors must still align)."""
    fp32, bf16 = make("fp32"), make("bf16")
    initial = {name: p.detach().clone() for name, p in _params(fp32)}
    batch = random_batch(64) if isinstance(fp32, SAC) else atari_batch(8)
    torch.manual_seed(1)
    metrics_32 = fp32.update(batch, updates=0, env_steps=0)
    torch.manual_seed(1)
    metrics_16 = bf16.update(batch, updates=0, env_steps=0)
    for tag, value in metrics_32.items():
        torch.testing.assert_close(metrics_16[tag], value, rtol=3e-2, atol=1e-3, msg=tag)
    step_32 = torch.cat([(p - initial[name]).flatten() for name, p in _params(fp32)])
    step_16 = torch.cat([(p - initial[name]).flatten() for name, p in _params(bf16)])
    assert step_32.abs().max() > 0
    assert torch.nn.functional.cosine_similarity(step_32, step_16, dim=0) > 0.95


@pytest.mark.parametrize("cls", [SAC, DQN])
def test_unknown_precision_is_refused(cls):
    with pytest.raises(ValueError, match=r"precision='fp16' is unknown; allowed: fp32, bf16"):
        cls(OBS_SPACE, gym.spaces.Discrete(2), "cpu", precision="fp16")


def _networks(agent) -> dict[str, nn.Module]:
    return agent.networks if isinstance(agent, SAC) else {"q": agent.q_network}


def _modules(agent):
    for net, network in _networks(agent).items():
        for name, module in network.named_modules():
            yield f"{net}.{name}", module


def _params(agent):
    for net, network in _networks(agent).items():
        for name, p in network.named_parameters():
            yield f"{net}.{name}", p
