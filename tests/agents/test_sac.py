"""SAC: losses on hand-computed cases, the squashed log-density, Polyak targets, interventions, exact state."""

import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import fire
import fire.registry
from agents.networks import Actor, RunningMeanStd
from agents.sac import HEADS, SAC
from loop.config import compose
from replay.base import Batch

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACTION_SPACE = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)  # Pendulum's: scale 2, bias 0
TINY = ("agent.net.hidden_dims=[16,16]",)
TINY_SIMBA = ("agent/net=simba", "agent.net.actor_hidden_dim=8", "agent.net.critic_hidden_dim=8")


def make_agent(*overrides, action_space=ACTION_SPACE, seed=0, **agent_cfg) -> SAC:
    cfg = compose("agent=sac", "env=pendulum", *(overrides or TINY))["agent"]
    torch.manual_seed(seed)
    return SAC(OBS_SPACE, action_space, "cpu", **{**cfg, **agent_cfg})


def random_batch(n=32, seed=0, action_dim=1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(n, 3, generator=g), actions=2 * torch.rand(n, action_dim, generator=g) - 1,
                 rewards=torch.randn(n, generator=g), next_obs=torch.randn(n, 3, generator=g),
                 discounts=torch.full((n,), 0.99))


class Fixed(nn.Module):
    """A critic stub returning given Q-values (2, B), differentiable so losses can flow."""

    def __init__(self, q):
        super().__init__()
        self.q = nn.Parameter(torch.tensor(q))

    def forward(self, obs, action):
        return self.q


def stub_policy(agent, actions, log_prob):
    agent.sample_action = lambda obs: (torch.tensor(actions), torch.tensor(log_prob))


# --- losses -------------------------------------------------------------------------------------------
def test_critic_target_uses_the_min_of_the_targets_and_the_entropy_bonus():
    agent = make_agent()
    agent.log_alpha.data.fill_(math.log(0.5))
    stub_policy(agent, [[0.1], [0.2]], [-1.0, 2.0])
    agent.target_critic = Fixed([[2.0, 3.0], [1.0, 4.0]])  # min over critics: [1, 3]
    agent.critic = Fixed([[2.0, 0.0], [3.0, 1.0]])
    loss, q = agent.critic_loss(torch.zeros(2, 3), torch.zeros(2, 1), torch.tensor([1.0, 0.5]), torch.zeros(2, 3),
                                torch.tensor([0.99, 0.0]))
    # targets: 1 + 0.99 * (1 - 0.5 * -1) = 2.485 and 0.5 (terminal)
    expected = ((2 - 2.485) ** 2 + (0 - 0.5) ** 2) / 2 + ((3 - 2.485) ** 2 + (1 - 0.5) ** 2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert q.shape == (2, 2)


def test_actor_loss_is_alpha_log_pi_minus_the_min_q():
    agent = make_agent()
    agent.log_alpha.data.fill_(math.log(0.5))
    stub_policy(agent, [[0.1], [0.2]], [-1.0, 2.0])
    agent.critic = Fixed([[2.0, 3.0], [1.0, 4.0]])
    loss, _ = agent.actor_loss(torch.zeros(2, 3))
    assert loss.item() == pytest.approx(((0.5 * -1 - 1) + (0.5 * 2 - 3)) / 2)


def test_temperature_loss_value_and_direction():
    agent = make_agent()  # |A| = 1, target entropy auto = -1
    agent.log_alpha.data.fill_(math.log(0.5))
    log_prob = torch.tensor([-1.0, 2.0])
    loss = agent.temperature_loss(log_prob)
    assert agent.target_entropy == -1.0
    assert loss.item() == pytest.approx(-(0.5 * (-1 - 1) + 0.5 * (2 - 1)) / 2)
    loss.backward()
    # entropy -mean(log_prob) = -0.5 is above the target -1: descent lowers alpha
    assert agent.log_alpha.grad.item() > 0


def test_target_entropy_coefficient_scales_with_action_dim():
    agent = make_agent(target_entropy=-0.5, action_space=gym.spaces.Box(-1, 1, (6,), np.float32))
    assert agent.target_entropy == -3.0


@pytest.mark.parametrize("action_space", [ACTION_SPACE, gym.spaces.Box(np.array([-1.0, 0.0], np.float32),
                                                                        np.array([3.0, 0.5], np.float32))])
def test_squashed_log_prob_matches_the_numerical_density(action_space):
    """log pi(a) against d/da of the exact CDF P(scale tanh(u) + bias <= a), by central differences."""
    agent = make_agent(action_space=action_space)
    dim = action_space.shape[0]
    mean, log_std = torch.linspace(-1.0, 1.5, dim), torch.linspace(-0.7, 0.3, dim)
    agent.actor = lambda obs: (mean.expand(len(obs), dim), log_std.expand(len(obs), dim))
    torch.manual_seed(1)
    actions, log_prob = agent.sample_action(torch.zeros(200, 3))
    low, high = action_space.low.astype(np.float64), action_space.high.astype(np.float64)
    scale, bias = (high - low) / 2, (high + low) / 2

    def cdf(a):
        return stats.norm.cdf((np.arctanh((a - bias) / scale) - mean.double().numpy()) / log_std.double().exp().numpy())

    a = actions.double().numpy()
    a = a[(np.abs((a - bias) / scale) < 0.999).all(axis=1)]
    h = 1e-5 * scale
    numerical = np.log((cdf(a + h) - cdf(a - h)) / (2 * h)).sum(axis=1)
    kept = (np.abs((actions.double().numpy() - bias) / scale) < 0.999).all(axis=1)
    np.testing.assert_allclose(log_prob.detach().numpy()[kept], numerical, rtol=1e-3, atol=1e-3)
    assert ((actions >= torch.tensor(low)) & (actions <= torch.tensor(high))).all()


def test_log_std_is_squashed_into_its_range():
    net = {"kind": "mlp", "hidden_dims": [8], "normalize_obs": False, "log_std_min": -5.0, "log_std_max": 2.0}
    actor = Actor(3, 2, net)
    with torch.no_grad():
        actor.log_std.bias.fill_(1e3)
        assert torch.allclose(actor(torch.randn(4, 3))[1], torch.tensor(2.0))
        actor.log_std.bias.fill_(-1e3)
        assert torch.allclose(actor(torch.randn(4, 3))[1], torch.tensor(-5.0))


# --- updates ------------------------------------------------------------------------------------------
def test_polyak_moves_the_target_a_tau_fraction_toward_the_critic():
    agent = make_agent()
    with torch.no_grad():
        for p in agent.target_critic.parameters():
            p.fill_(1.0)
        for p in agent.critic.parameters():
            p.fill_(3.0)
    agent._polyak_update()
    for p in agent.target_critic.parameters():
        assert torch.allclose(p, torch.full_like(p, 1.0 + 0.005 * 2.0))


def test_update_returns_detached_scalars_and_moves_every_learner():
    agent = make_agent()
    before = {k: v.clone() for k, v in agent.state_dict()["critic"].items()}
    actor_before = [p.clone() for p in agent.actor.parameters()]
    metrics = agent.update(random_batch(), updates=0, env_steps=0)
    assert set(metrics) == {"losses/critic", "losses/q1_values", "losses/q2_values", "losses/actor", "losses/alpha",
                            "losses/alpha_loss", "losses/entropy"}
    assert all(v.ndim == 0 and not v.requires_grad for v in metrics.values())
    assert all(not torch.equal(before[k], v) for k, v in agent.critic.state_dict().items())
    assert all(not torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))
    assert agent.alpha.item() != 1.0


def test_policy_frequency_delays_the_actor_and_compensates():
    agent = make_agent(policy_frequency=2)
    batch = random_batch()
    steps = []
    for updates in range(4):
        step = agent.actor_optimizer.state[agent.actor.mean.weight].get("step", torch.tensor(0.0)).clone()
        agent.update(batch, updates=updates, env_steps=0)
        steps.append(int(agent.actor_optimizer.state[agent.actor.mean.weight]["step"] - step))
    assert steps == [2, 0, 2, 0]


def test_actor_first_steps_the_actor_before_the_critic_target_is_computed():
    agent = make_agent(*TINY_SIMBA)
    assert agent.cfg.actor_first
    order = []
    critic_step, actor_steps = agent._critic_step, agent._actor_and_temperature_steps
    agent._critic_step = lambda *a: order.append("critic") or critic_step(*a)
    agent._actor_and_temperature_steps = lambda *a: order.append("actor") or actor_steps(*a)
    agent.update(random_batch(), updates=0, env_steps=0)
    assert order == ["actor", "critic"]


def test_running_mean_std_matches_numpy_over_chunks():
    rms = RunningMeanStd((2,))
    data = np.random.default_rng(0).normal([1.0, -3.0], [2.0, 0.5], size=(300, 2))
    for chunk in np.array_split(data, 7):
        rms.update(torch.as_tensor(chunk))
    # up to the prior (mean 0, var 1) of weight 1e-4 against 300 samples
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-4)
    normalized = rms.normalize(torch.as_tensor(data, dtype=torch.float32))
    assert normalized.dtype == torch.float32
    np.testing.assert_allclose(normalized.mean(0).numpy(), 0.0, atol=1e-4)


def test_act_is_bounded_and_deterministic_without_exploration():
    agent = make_agent(*TINY_SIMBA)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    agent.observe(obs)
    greedy = agent.act(obs, env_steps=0, explore=False)
    assert greedy.shape == (5, 1) and greedy.dtype == np.float32
    assert np.array_equal(greedy, agent.act(obs, env_steps=0, explore=False))
    sampled = agent.act(obs, env_steps=0, explore=True)
    assert not np.array_equal(sampled, greedy) and np.abs(sampled).max() <= 2.0


def test_simba_networks_have_the_paper_sizes():
    agent = SAC(gym.spaces.Box(-1, 1, (51,), np.float32), gym.spaces.Box(-1, 1, (19,), np.float32), "cpu",
                **compose("agent=sac", "env=pendulum", "agent/net=simba")["agent"])
    shapes = {name: tuple(m.weight.shape) for name, m in agent.actor.named_modules() if isinstance(m, nn.Linear)}
    assert shapes == {"encoder.0": (128, 51), "encoder.1.fc1": (512, 128), "encoder.1.fc2": (128, 512),
                      "mean": (19, 128), "log_std": (19, 128)}
    critic = [tuple(m.weight.shape) for m in agent.critic.members[1].modules() if isinstance(m, nn.Linear)]
    assert critic == [(512, 70), (2048, 512), (512, 2048), (2048, 512), (512, 2048), (1, 512)]
    assert agent.obs_normalizer.enabled and agent.alpha.item() == pytest.approx(0.01)
    assert agent.target_entropy == -9.5
    assert agent.actor_optimizer.param_groups[0]["weight_decay"] == 0.01


# --- interventions ------------------------------------------------------------------------------------
def trained(*overrides, updates=3) -> SAC:
    agent = make_agent(*overrides)
    agent.observe(np.random.default_rng(0).normal(size=(8, 3)))
    for i in range(updates):
        agent.update(random_batch(seed=i), updates=i, env_steps=0)
    return agent


def targets_equal_critic(agent):
    return all(torch.equal(a, b) for a, b in zip(agent.critic.state_dict().values(),
                                                 agent.target_critic.state_dict().values(), strict=True))


@pytest.mark.parametrize("net", [TINY, TINY_SIMBA])
@pytest.mark.parametrize("method", fire.registry.supported(SAC.PROVIDES))
def test_reinit_defaults_sync_targets_reset_optimisers_and_temperature_keep_normaliser(net, method):
    agent = trained(*net)
    normalizer = {k: v.clone() for k, v in agent.obs_normalizer.state_dict().items()}
    reports = agent.reinit(method, {}, random_batch())
    assert set(reports) == {"actor", "critic"}
    assert all(isinstance(r, fire.Report) for r in reports.values())
    assert targets_equal_critic(agent)
    assert not agent.actor_optimizer.state and not agent.critic_optimizer.state
    assert agent.alpha.item() == pytest.approx(agent.cfg.initial_temperature)
    assert not agent.temperature_optimizer.state
    assert all(torch.equal(v, normalizer[k]) for k, v in agent.obs_normalizer.state_dict().items())
    agent.update(random_batch(), updates=3, env_steps=0)  # the fresh optimisers drive the same parameter tensors


def test_reinit_can_keep_optimiser_state_and_temperature():
    agent = trained()
    alpha = agent.alpha.clone()
    agent.reinit("fire", {"reset_optimizer": False, "reset_temperature": False}, random_batch())
    assert agent.actor_optimizer.state and agent.critic_optimizer.state and agent.temperature_optimizer.state
    assert torch.equal(agent.alpha, alpha)


def test_reset_restores_theta0_and_snp_interpolates_toward_it():
    agent = trained()
    theta = {k: v.clone() for k, v in agent.critic.state_dict().items()}
    agent.reinit("snp", {}, random_batch())
    for name, value in agent.critic.state_dict().items():
        assert torch.allclose(value, 0.2 * theta[name] + 0.8 * agent.init_snapshots["critic"][name])
    agent.reinit("reset", {}, random_batch())
    for name, value in agent.actor.state_dict().items():
        assert torch.equal(value, agent.init_snapshots["actor"][name])


def test_fire_orthogonalises_square_weights_and_keeps_biases_and_layernorms():
    agent = trained(*TINY_SIMBA)
    biases = {k: v.clone() for k, v in agent.critic.state_dict().items() if not k.endswith("weight")}
    norm = {k: v.clone() for k, v in agent.critic.state_dict().items() if ".norm." in k}
    assert norm
    agent.reinit("fire", {"polar": "svd"}, random_batch())
    state = agent.critic.state_dict()
    assert all(torch.equal(state[k], v) for k, v in biases.items())  # LayerNorm weights are among them
    W = agent.critic.members[0].encoder[1].fc1.weight  # 32x8, tall: W^T W = (32/8) I
    assert torch.allclose(W.T @ W, 4.0 * torch.eye(8), atol=1e-4)


def test_head_reset_touches_only_the_heads():
    agent = trained()
    before = {net: {k: v.clone() for k, v in m.state_dict().items()} for net, m in agent.networks.items()}
    reports = agent.reinit("head_reset", {}, random_batch())
    changed = {f"{net}.{p.name}" for net, r in reports.items() for p in r.layers}
    assert changed == {f"{net}.{head}.{kind}" for net, heads in HEADS.items() for head in heads
                       for kind in ("weight", "bias")}
    assert torch.equal(agent.actor.encoder[0].weight, before["actor"]["encoder.0.weight"])
    only = agent.reinit("head_reset", {"layers": ["critic.members.1.head"]}, random_batch())
    assert list(only) == ["critic"]


@pytest.mark.parametrize(("method", "options", "message"), [
    ("redo", {}, "reinit='redo' is not available for agent=sac; allowed: none, fire, reset, snp, head_reset "),
    ("pi", {}, "reinit='pi' is not available for agent=sac"),
    ("fire", {"linear": "reset"}, "reinit.linear is unknown; allowed: reset_optimizer, "),
    ("fire", {"shrink": 0.5}, "reinit.shrink is unknown"),
    ("head_reset", {"layers": ["mean"]}, "reinit.layers entry 'mean' must be <network>.<module>"),
])
def test_reinit_rejects_what_it_does_not_support(method, options, message):
    with pytest.raises(ValueError, match=message):
        make_agent().reinit(method, options, random_batch())


def test_diagnostics_are_finite_plasticity_scalars_for_both_presets():
    for net, layer in ((TINY, "encoder.3"), (TINY_SIMBA, "encoder.2")):
        metrics = trained(*net, updates=1).diagnostics(random_batch())
        assert all(k.startswith(("plasticity/actor/", "plasticity/critic/")) for k in metrics)
        assert all(math.isfinite(v) for v in metrics.values())
        assert f"plasticity/actor/dormant_0.1/{layer}" in metrics
        assert "plasticity/critic/dfi" in metrics and f"plasticity/critic/srank/members.1.{layer}" in metrics


# --- state --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("net", [TINY, TINY_SIMBA])
def test_state_dict_round_trip_is_exact(net):
    agent = trained(*net)
    agent.reinit("fire", {"reset_optimizer": False}, random_batch())  # non-trivial snapshots and state
    agent.update(random_batch(seed=7), updates=3, env_steps=0)
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    restored = make_agent(*net, seed=123)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    for a in (agent, restored):
        torch.manual_seed(5)
        a.observe(np.ones((2, 3)))
        a.metrics = a.update(random_batch(seed=8), updates=4, env_steps=0)
    for key in agent.metrics:
        assert torch.equal(agent.metrics[key], restored.metrics[key]), key
    for name in ("actor", "critic", "target_critic", "obs_normalizer"):
        for k, v in getattr(agent, name).state_dict().items():
            assert torch.equal(v, getattr(restored, name).state_dict()[k]), (name, k)
    assert torch.equal(agent.log_alpha, restored.log_alpha)


@pytest.mark.parametrize(("override", "message"), [
    ({"target_entropy": "high"}, "agent.target_entropy='high' is not allowed; allowed: auto | float"),
    ({"lr": 1.0}, "agent.lr is unknown; allowed: actor_lr, "),
    ({"net": {"kind": "resnet"}}, "agent.net.kind='resnet' is unknown; allowed: mlp, simba"),
    ({"tau": 0.0}, r"agent.tau=0.0 must be a number in \(0.0, 1.0\]"),
    ({"actor_lr": -1e-3}, r"agent.actor_lr=-0.001 must be a number > 0.0"),
    ({"policy_frequency": 1.5}, "agent.policy_frequency=1.5 is not allowed; allowed: int"),
])
def test_bad_config_is_one_line_naming_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        make_agent(**override)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    cfg = compose("agent=sac", "env=pendulum", *TINY_SIMBA)["agent"]
    agent = SAC(OBS_SPACE, ACTION_SPACE, "cuda", **cfg)
    batch = Batch(*(t.cuda() for t in (random_batch().obs, random_batch().actions, random_batch().rewards,
                                       random_batch().next_obs, random_batch().discounts)))
    agent.observe(np.zeros((1, 3), np.float32))
    assert all(v.is_cuda for v in agent.update(batch, updates=0, env_steps=0).values())
    agent.reinit("fire", {}, batch)
    assert agent.act(np.zeros((2, 3), np.float32), env_steps=0, explore=True).shape == (2, 1)


# --- configs ------------------------------------------------------------------------------------------
def test_paper_experiment_selects_simba_and_the_command_line_intervention_wins():
    cfg = compose("experiment=fire_sac_hb", "env=hopper", "reinit=snp")
    assert cfg["agent"]["net"]["kind"] == "simba" and cfg["agent"]["weight_decay"] == 0.01
    assert cfg["reinit"]["name"] == "snp" and cfg["reinit"]["at_env_steps"] == [500_000]
    assert cfg["env"]["action_repeat"] == 2 and cfg["replay_ratio"] == 1.0
    SAC(OBS_SPACE, ACTION_SPACE, "cpu", **compose("agent=sac", "env=pendulum", *TINY_SIMBA)["agent"])


def test_config_validation_names_the_interventions_sac_offers():
    from loop.config import ConfigError, validate

    cfg = compose("agent=sac", "env=pendulum", "reinit=redo", "reinit.at_env_steps=[600000]")
    with pytest.raises(ConfigError, match="reinit='redo' is not available for agent=sac; allowed: none, fire, reset"):
        validate(cfg)
