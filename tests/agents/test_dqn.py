"""DQN: TD targets and losses on hand-computed cases, epsilon schedule, target cadence, interventions."""

import io

import gymnasium
import numpy as np
import pytest
import torch
from torch import nn

from agents.dqn import DQN
from agents.nature_cnn import QNetwork
from loop.config import compose
from replay.base import Batch

OBS_SPACE = gymnasium.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def make_agent(num_actions: int = 4, **overrides) -> DQN:
    cfg = {**compose("agent=dqn", "env=atari")["agent"], **overrides}
    torch.manual_seed(0)
    return DQN(OBS_SPACE, gymnasium.spaces.Discrete(num_actions), "cpu", **cfg)


def random_batch(size: int = 8, num_actions: int = 4, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randint(0, 256, (size, 4, 84, 84), dtype=torch.uint8, generator=g),
        actions=torch.randint(0, num_actions, (size,), generator=g),
        rewards=torch.randn(size, generator=g),
        next_obs=torch.randint(0, 256, (size, 4, 84, 84), dtype=torch.uint8, generator=g),
        discounts=torch.full((size,), 0.99),
    )


class LookupQ(nn.Module):
    """Q(s) = table[id(s)], id stored in the first pixel: hand-checkable Q-values."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, obs):
        return self.table[obs[:, 0, 0, 0].long()]


def lookup_batch(states, actions, rewards, next_states, discounts) -> Batch:
    def frames(ids):
        x = torch.zeros(len(ids), 4, 84, 84, dtype=torch.uint8)
        x[:, 0, 0, 0] = torch.tensor(ids)
        return x

    return Batch(
        frames(states),
        torch.tensor(actions),
        torch.tensor(rewards, dtype=torch.float32),
        frames(next_states),
        torch.tensor(discounts, dtype=torch.float32),
    )


ONLINE = [[0.0, 0.0], [1.0, 3.0], [5.0, 2.0]]  # rows: states 0, 1, 2; columns: actions
TARGET = [[0.0, 0.0], [4.0, 2.0], [1.0, 6.0]]


@pytest.mark.parametrize(
    ("double_dqn", "expected"),
    [
        # r + d * max_a Q_target(s', a): s'=1 -> 4, s'=2 -> 6; terminal (d=0) -> r
        (False, [0.5 + 0.9 * 4.0, -1.0 + 0.9 * 6.0, 2.0]),
        # double: a' = argmax Q_online(s') (s'=1 -> action 1, s'=2 -> action 0), valued by the target
        (True, [0.5 + 0.9 * 2.0, -1.0 + 0.9 * 1.0, 2.0]),
    ],
)
def test_td_target_hand_computed(double_dqn, expected):
    agent = make_agent(num_actions=2, double_dqn=double_dqn, clip_rewards=False)
    agent.q_network, agent.target_q_network = LookupQ(ONLINE), LookupQ(TARGET)
    batch = lookup_batch([0, 0, 0], [0, 0, 0], [0.5, -1.0, 2.0], [1, 2, 1], [0.9, 0.9, 0.0])
    torch.testing.assert_close(agent.td_target(batch), torch.tensor(expected))


def test_reward_clipping_uses_the_sign():
    agent = make_agent(num_actions=2, clip_rewards=True)
    agent.q_network, agent.target_q_network = LookupQ(ONLINE), LookupQ(TARGET)
    batch = lookup_batch([0, 0, 0], [0, 0, 0], [50.0, -0.2, 0.0], [0, 0, 0], [0.9, 0.9, 0.9])
    torch.testing.assert_close(agent.td_target(batch), torch.tensor([1.0, -1.0, 0.0]))


@pytest.mark.parametrize(("loss", "expected"), [("huber", (0.125 + 2.5) / 2), ("mse", (0.25 + 9.0) / 2)])
def test_loss_hand_computed(loss, expected):
    agent = make_agent(num_actions=2, loss=loss, clip_rewards=False)
    agent.q_network, agent.target_q_network = LookupQ(ONLINE), LookupQ(TARGET)
    agent.optimizer = agent._make_optimizer()
    # Q(s=1, a=1) = 3, target 2.5 (TD error 0.5); Q(s=2, a=0) = 5, target 2 (TD error 3)
    batch = lookup_batch([1, 2], [1, 0], [2.5, 2.0], [0, 0], [0.0, 0.0])
    out = agent.update(batch, updates=0, env_steps=0)
    assert out["losses/td_loss"].item() == pytest.approx(expected)
    assert out["losses/q_values"].item() == pytest.approx(4.0)


def test_epsilon_schedule():
    agent = make_agent(learning_starts=100, exploration_env_steps=1000, epsilon_start=1.0, epsilon_end=0.01)
    values = [agent.epsilon(s) for s in (0, 100, 600, 1100, 5000)]
    assert values == pytest.approx([1.0, 1.0, 0.505, 0.01, 0.01])
    by_fraction = make_agent(learning_starts=100, exploration_fraction=0.1, total_env_steps=10_000)
    assert by_fraction.epsilon(600) == pytest.approx(0.505)


def test_eval_actions_are_greedy_with_epsilon_0_001():
    agent = make_agent(num_actions=2, eval_epsilon=0.001)
    agent.q_network = LookupQ([[0.0, 1.0]])  # action 1 is greedy everywhere
    obs = np.zeros((200_000, 4, 1, 1), np.uint8)
    actions = agent.act(obs, env_steps=0, explore=False)
    assert (actions == 0).mean() == pytest.approx(0.0005, abs=0.0002)  # half of the random draws
    assert (agent.act(obs[:1000], env_steps=0, explore=True) == 0).mean() > 0.4  # epsilon 1 at start


def test_target_copied_each_time_env_steps_crosses_the_period():
    agent = make_agent(target_update_env_steps=8, learning_rate=1e-3)
    batch = random_batch()

    def target_matches():
        return all(
            torch.equal(a, b)
            for a, b in zip(agent.q_network.parameters(), agent.target_q_network.parameters(), strict=True)
        )

    synced = []
    for updates, env_steps in enumerate(range(4, 40, 4)):  # 4 envs per vector step
        agent.update(batch, updates=updates, env_steps=env_steps)
        synced.append(target_matches())
    assert synced == [False, True, False, True, False, True, False, True, False]  # at 8, 16, 24, 32


def test_target_copied_after_every_target_update_updates_whatever_the_env_steps():
    agent = make_agent(target_update_env_steps=8, target_update_updates=3, learning_rate=1e-3)
    batch = random_batch()
    synced = []
    for updates in range(7):  # the env stands still, as during heavy priming
        agent.update(batch, updates=updates, env_steps=100)
        synced.append(all(torch.equal(a, b) for a, b in zip(agent.q_network.parameters(),
                                                            agent.target_q_network.parameters(), strict=True)))
    assert synced == [False, False, True, False, False, True, False]


def checkpoint_round_trip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def trained_agent(**overrides) -> tuple[DQN, Batch]:
    agent = make_agent(learning_rate=1e-3, **overrides)
    batch = random_batch()
    for updates in range(3):
        agent.update(batch, updates=updates, env_steps=0)
    return agent, batch


def params(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def adam_state(agent):
    return [(s["step"].item(), s["exp_avg"].clone()) for s in agent.optimizer.state.values()]


def assert_target_synced(agent):
    target = agent.target_q_network.state_dict()
    assert target.keys() == agent.q_network.state_dict().keys()
    for name, a in agent.q_network.state_dict().items():
        assert torch.equal(a, target[name]), name


def test_fire_is_the_paper_hybrid_and_keeps_adam():
    agent, batch = trained_agent()
    before, adam_before = params(agent.q_network), adam_state(agent)
    reports = agent.reinit("fire", {}, batch)
    after, init = params(agent.q_network), agent.init_snapshot
    for name in after:
        if name.startswith("encoder") and name.endswith("weight"):
            assert not torch.equal(after[name], before[name]) and not torch.equal(after[name], init[name])
        elif name.startswith("encoder"):  # conv biases untouched
            assert torch.equal(after[name], before[name])
        else:  # every Linear weight and bias back to theta_0
            assert torch.equal(after[name], init[name]), name
    conv1 = after["encoder.0.weight"]  # per-tap orthogonal, scaled by sqrt(32/4)/64 (spec §1.4)
    assert conv1.norm().item() == pytest.approx(np.sqrt(32 / 4) / 64 * np.sqrt(4 * 64), rel=0.02)
    assert [s for s, _ in adam_state(agent)] == [s for s, _ in adam_before]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(adam_state(agent), adam_before, strict=True))
    assert_target_synced(agent)
    assert set(reports) == {"q_network"} and len(reports["q_network"].layers) == 3 + 4


def test_fire_linear_orthogonalize_and_reset_optimizer():
    agent, batch = trained_agent()
    before = params(agent.q_network)
    agent.reinit("fire", {"reset_linear": False, "reset_optimizer": True}, batch)
    after = params(agent.q_network)
    assert not torch.equal(after["head.0.weight"], before["head.0.weight"])
    assert not torch.equal(after["head.0.weight"], agent.init_snapshot["head.0.weight"])
    assert torch.equal(after["head.0.bias"], before["head.0.bias"])
    assert agent.optimizer.state == {}
    assert_target_synced(agent)


def test_reset_and_snp_and_head_reset():
    agent, batch = trained_agent()
    agent.reinit("reset", {}, batch)
    assert all(torch.equal(p, agent.init_snapshot[n]) for n, p in params(agent.q_network).items())
    assert len(agent.optimizer.state) == 10  # Adam moments kept

    agent, batch = trained_agent()
    before, init = params(agent.q_network), agent.init_snapshot
    agent.reinit("snp", {}, batch)
    for name, p in params(agent.q_network).items():
        expected = 0.2 * before[name] + 0.8 * init[name] if name.startswith("encoder") else init[name]
        torch.testing.assert_close(p, expected)
    assert_target_synced(agent)

    agent, batch = trained_agent()
    before = params(agent.q_network)
    agent.reinit("head_reset", {}, batch)
    for name, p in params(agent.q_network).items():
        assert torch.equal(p, before[name] if name.startswith("encoder") else agent.init_snapshot[name])


def test_plasticity_injection_keeps_outputs_and_builds_fresh_adam():
    agent, batch = trained_agent()
    q_before = agent.q_network(batch.obs)
    trainable_before = sum(p.numel() for p in agent.q_network.parameters() if p.requires_grad)
    agent.reinit("pi", {}, batch)
    torch.testing.assert_close(agent.q_network(batch.obs), q_before)
    torch.testing.assert_close(agent.target_q_network(batch.obs), q_before)
    assert sum(p.numel() for p in agent.q_network.parameters() if p.requires_grad) == trainable_before
    assert agent.optimizer.state == {}
    agent.update(batch, updates=3, env_steps=0)  # trains the encoder and the new head
    with pytest.raises(ValueError, match="already"):
        agent.reinit("pi", {}, batch)
    restored = make_agent()
    restored.load_state_dict(checkpoint_round_trip(agent.state_dict()))
    torch.testing.assert_close(restored.q_network(batch.obs), agent.q_network(batch.obs))


def test_redo_recycles_dormant_units():
    agent, batch = trained_agent()
    report = agent.reinit("redo", {"tau": 0.5}, batch)["q_network"]
    assert any("dormant" in layer.action for layer in report.layers)
    assert sum(layer.sfe for layer in report.layers) > 0  # some units were recycled at tau 0.5
    assert_target_synced(agent)


def test_redo_redraws_units_from_the_networks_own_init():
    # Sokar et al. 2023: recycled units come from the network's initial distribution (Xavier-uniform, zero
    # bias here), not torch's default Linear/Conv init (fc std 0.0103, biases +-0.018).
    agent, batch = trained_agent()
    with torch.no_grad():
        agent.q_network.head[0].bias.fill_(-1.0)  # every fc unit dead: all 512 are recycled
    before = params(agent.q_network)
    agent.reinit("redo", {}, batch)
    after = params(agent.q_network)
    weight, bias = after["head.0.weight"], after["head.0.bias"]
    assert not torch.equal(weight, before["head.0.weight"]) and torch.equal(bias, torch.zeros(512))
    xavier_std = np.sqrt(2 / (3136 + 512))  # 0.0234
    assert weight.std().item() == pytest.approx(xavier_std, rel=0.02)
    assert torch.equal(after["head.2.weight"], torch.zeros_like(after["head.2.weight"]))  # outgoing zeroed


def test_bad_reinit_method_and_option_are_named():
    agent, batch = trained_agent()
    with pytest.raises(ValueError, match="reinit.name='dash' is unknown; allowed: none, fire, reset"):
        agent.reinit("dash", {}, batch)
    with pytest.raises(ValueError, match="reinit.shrinkage is unknown; allowed: "):
        agent.reinit("snp", {"shrinkage": 0.5}, batch)
    with pytest.raises(ValueError, match="reinit.reset_linear='keep' is not allowed; allowed: bool | null"):
        agent.reinit("fire", {"reset_linear": "keep"}, batch)
    with pytest.raises(ValueError, match="reinit.reset_temperature=True: agent=dqn has nothing"):
        agent.reinit("fire", {"reset_temperature": True}, batch)


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="agent.learning_rat is unknown; allowed: learning_rate, "):
        make_agent(learning_rat=1e-3)
    with pytest.raises(ValueError, match="agent.loss='l1' is not allowed; allowed: huber | mse"):
        make_agent(loss="l1")


def test_state_dict_resumes_exactly():
    agent, batch = trained_agent()
    agent.act(batch.obs[:2].numpy(), env_steps=100, explore=True)
    restored = make_agent(learning_rate=1e-3)
    restored.load_state_dict(checkpoint_round_trip(agent.state_dict()))
    for a in (agent, restored):
        a.update(batch, updates=3, env_steps=100)
    torch.testing.assert_close(restored.q_network(batch.obs), agent.q_network(batch.obs))
    obs = batch.obs.numpy()
    np.testing.assert_array_equal(
        restored.act(obs, env_steps=200, explore=True), agent.act(obs, env_steps=200, explore=True)
    )


def test_state_is_declared_once_and_old_checkpoints_load():
    agent, batch = trained_agent()
    state = checkpoint_round_trip(agent.state_dict())
    assert list(state) == list(DQN.STATE)
    old = {**state, "updates": 3, "env_steps": 100}  # what checkpoints held before update() took counters
    restored = make_agent()
    restored.load_state_dict(old)
    torch.testing.assert_close(restored.q_network(batch.obs), agent.q_network(batch.obs))
    with pytest.raises(ValueError, match=r"DQN checkpoint: unknown keys \['rng2'\], missing keys \['rng'\]"):
        make_agent().load_state_dict({**{k: v for k, v in state.items() if k != "rng"}, "rng2": 0})


def test_diagnostics_are_plasticity_tags():
    agent, batch = trained_agent()
    metrics = agent.diagnostics(batch)
    assert all(tag.startswith("plasticity/") for tag in metrics)
    assert 0.0 <= metrics["plasticity/dormant_0.1"] <= 1.0 and "plasticity/dfi" in metrics


def test_nature_cnn_init_and_shapes():
    agent = make_agent(num_actions=6, dueling=True)
    out = agent.q_network(random_batch(3).obs)
    assert out.shape == (3, 6)
    for m in agent.q_network.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
            bound = np.sqrt(6 / (m.weight[0].numel() + m.weight[:, 0].numel()))  # Xavier-uniform bound
            assert m.weight.abs().max().item() <= bound
            assert m.weight.abs().max().item() > 0.9 * bound


def test_cpu_speed_layout_and_fused_adam_give_the_plain_update():
    # The agent keeps conv weights channels-last and uses fused Adam on CPU (speed only): one update
    # must match a plain contiguous network with foreach Adam from the same weights.
    agent = make_agent()
    assert agent.q_network.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = QNetwork(4)
    plain.load_state_dict(agent.q_network.state_dict())
    plain_target = QNetwork(4)
    plain_target.load_state_dict(agent.target_q_network.state_dict())
    optimizer = torch.optim.Adam(plain.parameters(), lr=agent.cfg.learning_rate, eps=agent.cfg.adam_eps,
                                 foreach=True)
    batch = random_batch()
    agent.update(batch, updates=0, env_steps=0)
    with torch.no_grad():
        target = batch.rewards.sign() + batch.discounts * plain_target(batch.next_obs).max(dim=1).values
    q = plain(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    optimizer.zero_grad()
    torch.nn.functional.smooth_l1_loss(q, target).backward()
    optimizer.step()
    for (name, ours), theirs in zip(agent.q_network.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)
