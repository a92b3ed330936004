"""DQN with the MinAtar preset (agents/minatar_net.py, experiment=minatar_dqn): the paper's network and
optimiser, and every intervention on it."""

import copy
from functools import cache

import gymnasium
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from agents.dqn import DQN
from agents.minatar_net import MinAtarQNetwork
from loop.config import compose
from replay.base import Batch

OBS_SPACE = gymnasium.spaces.Box(0, 1, (10, 10, 10), np.uint8)  # seaquest's 10 channels
NUM_ACTIONS = 6


@cache
def preset() -> dict:
    return compose("experiment=minatar_dqn")["agent"]


def make_agent(**overrides) -> DQN:
    cfg = {**preset(), **overrides}
    torch.manual_seed(0)
    return DQN(OBS_SPACE, gymnasium.spaces.Discrete(NUM_ACTIONS), "cpu", **cfg)


def random_batch(size: int = 8, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randint(0, 2, (size, 10, 10, 10), dtype=torch.uint8, generator=g),
                 actions=torch.randint(0, NUM_ACTIONS, (size,), generator=g),
                 rewards=torch.randint(0, 3, (size,), generator=g).float(),
                 next_obs=torch.randint(0, 2, (size, 10, 10, 10), dtype=torch.uint8, generator=g),
                 discounts=torch.full((size,), 0.99))


def test_the_papers_network_one_3x3_conv_of_16_then_128_units():
    agent = make_agent()
    net = agent.q_network
    assert isinstance(net, MinAtarQNetwork)
    conv, linears = net.encoder[0], [m for m in net.head.modules() if isinstance(m, nn.Linear)]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == \
        (10, 16, (3, 3), (1, 1), (0, 0))
    assert [(m.in_features, m.out_features) for m in linears] == [(16 * 8 * 8, 128), (128, NUM_ACTIONS)]
    obs = random_batch().obs
    # 0/1 maps go in as they are (no /255 as for pixels)
    expected = linears[1](F.relu(linears[0](F.relu(conv(obs.float())).flatten(1))))
    torch.testing.assert_close(net(obs), expected)


def test_preset_update_is_one_centered_rmsprop_step_on_the_huber_td_loss():
    agent = make_agent()
    assert agent.cfg.clip_rewards is False
    reference = copy.deepcopy(agent.q_network)
    optimizer = torch.optim.RMSprop(reference.parameters(), lr=2.5e-4, alpha=0.95, eps=0.01, centered=True)
    batch = random_batch()
    for i in range(3):
        with torch.no_grad():  # the target network is the initial network until the first copy
            target = batch.rewards + batch.discounts * agent.target_q_network(batch.next_obs).max(dim=1).values
        q = reference(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        optimizer.zero_grad()
        F.smooth_l1_loss(q, target).backward()
        optimizer.step()
        agent.update(batch, updates=i, env_steps=i)
    for ours, theirs in zip(agent.q_network.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("method", ["fire", "reset", "snp", "head_reset", "redo", "pi"])
def test_every_intervention_applies_to_the_minatar_network(method):
    agent = make_agent()
    batch = random_batch(32)
    for i in range(5):
        agent.update(batch, updates=i, env_steps=i)
    before = copy.deepcopy(agent.q_network.state_dict())
    reports = agent.reinit(method, {}, batch)
    assert set(reports) == {"q_network"}
    changed = [k for k, v in agent.q_network.state_dict().items() if k not in before or not torch.equal(v, before[k])]
    assert changed, method
    assert agent.update(batch, updates=5, env_steps=5)["losses/td_loss"].isfinite()
    if method == "fire":  # the conv's 9 taps (16 x 10 each) are orthogonalised
        taps = agent.q_network.encoder[0].weight.detach().permute(2, 3, 0, 1).reshape(9, 16, 10)
        assert torch.linalg.svdvals(taps).std() < 1e-2 * torch.linalg.svdvals(taps).mean()


@pytest.mark.parametrize(("key", "value", "allowed"), [("net", "resnet", "nature | minatar"),
                                                      ("optimizer", "sgd", "adam | rmsprop")])
def test_bad_net_or_optimizer_is_named(key, value, allowed):
    with pytest.raises(ValueError, match=f"agent.{key}='{value}' is not allowed; allowed: {allowed}"):
        make_agent(**{key: value})
