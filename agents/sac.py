"""SAC: twin critics with a clipped double-Q target, a tanh-squashed Gaussian actor, a learned temperature."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F

import fire
import fire.registry
from agents.base import AgentBase
from agents.networks import Actor, MlpNet, RunningMeanStd, SimbaNet, TwinCritic
from agents.optim import fused_adam_supported
from agents.precision import check_precision, update_autocast
from fire.options import option
from replay.base import Batch

HEADS = {"actor": ("mean", "log_std"), "critic": ("members.0.head", "members.1.head")}
LOG_2 = math.log(2.0)
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class SACConfig:
    """agent.* keys of agent=sac (values: configs/agent/sac.yaml and the agent/net=mlp|simba presets)."""

    actor_lr: float = option(doc="AdamW learning rate of the actor", gt=0.0)
    critic_lr: float = option(doc="AdamW learning rate of the critics", gt=0.0)
    temperature_lr: float = option(doc="Adam learning rate of log(alpha)", gt=0.0)
    weight_decay: float = option(doc="AdamW decoupled weight decay on actor and critic (0 = Adam)", ge=0.0)
    tau: float = option(doc="Polyak rate of the target critics, every update", gt=0.0, le=1.0)
    policy_frequency: int = option(doc="actor + temperature steps every N-th update, N of them (CleanRL)", ge=1)
    initial_temperature: float = option(doc="alpha at the start (and after reset_temperature)", gt=0.0)
    target_entropy: Literal["auto"] | float = option(doc="auto = -|A|, or a coefficient c giving c * |A|")
    actor_first: bool = option(doc="actor and temperature steps before the critic step (SimBa's order)")
    net: MlpNet | SimbaNet = option(doc="network preset (agent/net=mlp|simba)")


class SAC(AgentBase):
    """Soft actor-critic (Haarnoja et al. 2018) for Box actions, CleanRL's or SimBa's networks (agent.net).

    One update: critic step on the clipped double-Q soft target, then (every `policy_frequency`-th
    update, `policy_frequency` times, CleanRL's delayed-actor compensation) an actor step and a temperature
    step, then Polyak-averaged target critics. `actor_first=true` runs the actor and temperature steps
    before the critic step instead, SimBa's order. Observations are normalised by a running mean/std
    (agent.net.normalize_obs) that observe() updates; the replay keeps raw observations.

    Interventions touch `actor` and `critic` (both members of the twin; heads: the actor's mean and
    log-std layers, each critic's head); the target critics are then set to the critics. By default (the
    paper's SAC code, spec 1.7) the actor and critic AdamW states are rebuilt and the temperature goes back
    to initial_temperature with a fresh optimiser. The observation normaliser is never touched, and torch's
    generator is not re-seeded (the JAX code resets its key to PRNGKey(seed); we keep the run's one
    stream). ReDo and plasticity injection are not offered: fire.redo_ needs a plain Linear -> activation
    chain, which the actor's two parallel heads and SimBa's LayerNorm residual blocks are not, and the
    paper's SAC code has no plasticity injection.
    """

    CONFIG = SACConfig
    NETWORKS = ("actor", "critic")
    STATE = ("actor", "critic", "target_critic", "log_alpha", "obs_normalizer", "actor_optimizer",
             "critic_optimizer", "temperature_optimizer", "init_snapshots", "actor_metrics")
    PROVIDES = frozenset({"heads"})
    REINIT_DEFAULTS = {"reset_optimizer": True, "reset_temperature": True, "reset_linear": False}

    def __init__(
        self,
        observation_space: gymnasium.spaces.Box,
        action_space: gymnasium.spaces.Box,
        device: str | torch.device,
        precision: str = "fp32",
        **cfg: Any,
    ):
        check_precision(precision, "SAC")
        if not isinstance(action_space, gymnasium.spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"SAC needs 1-D Box observations and Box actions, got {observation_space} and "
                             f"{action_space}; allowed: Box(obs_dim,), Box(action_dim,)")
        if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
            raise ValueError(f"SAC squashes actions into the action space's bounds; {action_space} is unbounded")
        self.cfg = cfg = self.config_from(cfg)
        self.device = torch.device(device)
        self.precision = precision
        obs_dim, action_dim = observation_space.shape[0], action_space.shape[0]
        self.action_dtype = action_space.dtype
        # Actions in the env's units: scale * tanh(u) + bias.
        low, high = (torch.as_tensor(b, dtype=torch.float32, device=self.device) for b in (action_space.low,
                                                                                           action_space.high))
        self.action_scale, self.action_bias = (high - low) / 2.0, (high + low) / 2.0
        self.log_action_scale = self.action_scale.log().sum()

        net = dataclasses.asdict(cfg.net)
        self.obs_normalizer = RunningMeanStd((obs_dim,), enabled=cfg.net.normalize_obs).to(self.device)
        self.actor = Actor(obs_dim, action_dim, net).to(self.device)
        self.critic = TwinCritic(obs_dim, action_dim, net).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.init_snapshots = {name: fire.InitSnapshot.capture(network) for name, network in self.networks.items()}

        target_entropy = cfg.target_entropy
        self.target_entropy = -float(action_dim) if target_entropy == "auto" else float(target_entropy) * action_dim
        self.log_alpha = torch.tensor(math.log(cfg.initial_temperature), device=self.device, requires_grad=True)
        self.actor_optimizer, self.critic_optimizer = self._make_network_optimizers()
        self.temperature_optimizer = torch.optim.Adam([self.log_alpha], lr=cfg.temperature_lr)
        self.actor_metrics: dict[str, torch.Tensor] = {}  # from the latest actor step (delayed actor)

    @property
    def networks(self) -> dict[str, torch.nn.Module]:
        return {name: getattr(self, name) for name in self.NETWORKS}

    def _make_network_optimizers(self) -> tuple[torch.optim.AdamW, torch.optim.AdamW]:
        # AdamW on every parameter; weight_decay=0 makes it exactly Adam (CleanRL), 1e-2 is SimBa's.
        cfg, fused = self.cfg, fused_adam_supported(self.device)
        return (torch.optim.AdamW(self.actor.parameters(), lr=cfg.actor_lr, weight_decay=cfg.weight_decay,
                                  fused=fused),
                torch.optim.AdamW(self.critic.parameters(), lr=cfg.critic_lr, weight_decay=cfg.weight_decay,
                                  fused=fused))

    @property
    def alpha(self) -> torch.Tensor:
        """The temperature, detached (0-d)."""
        return self.log_alpha.detach().exp()

    # --- acting ---------------------------------------------------------------------------------------
    def sample_action(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised a ~ pi(.|obs) for normalised obs (B, obs_dim): actions (B, A) in env units and
        log pi(a|obs) (B,), with the change of variables of a = scale * tanh(u) + bias."""
        mean, log_std = self.actor(obs)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise
        gaussian_log_prob = (-0.5 * noise.square() - log_std - LOG_SQRT_2PI).sum(-1)
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
        log_det_tanh = (2.0 * (LOG_2 - u - F.softplus(-2.0 * u))).sum(-1)
        log_prob = gaussian_log_prob - log_det_tanh - self.log_action_scale
        return torch.tanh(u) * self.action_scale + self.action_bias, log_prob

    @torch.no_grad()
    def act(self, obs: np.ndarray, *, env_steps: int, explore: bool) -> np.ndarray:
        """(num_envs, A) actions: a policy sample, or tanh of the mean when explore=False."""
        obs_t = self.obs_normalizer.normalize(torch.as_tensor(obs, device=self.device))
        if explore:
            actions, _ = self.sample_action(obs_t)
        else:
            actions = torch.tanh(self.actor(obs_t)[0]) * self.action_scale + self.action_bias
        return actions.cpu().numpy().astype(self.action_dtype)

    def observe(self, obs: np.ndarray) -> None:
        """Fold the actor-side observations into the normaliser's statistics."""
        if self.obs_normalizer.enabled:
            self.obs_normalizer.update(torch.as_tensor(obs, device=self.device))

    # --- losses ---------------------------------------------------------------------------------------
    def critic_loss(self, obs, actions, rewards, next_obs, discounts) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, Q (2, B)): sum over both critics of the mean squared error to the soft target
        r + discounts * (min_i Q'_i(s', a') - alpha log pi(a'|s')), a' ~ pi(.|s')."""
        with torch.no_grad():
            next_actions, next_log_prob = self.sample_action(next_obs)
            next_q = self.target_critic(next_obs, next_actions).min(dim=0).values
            target = rewards + discounts * (next_q - self.alpha * next_log_prob)
        q = self.critic(obs, actions)
        return (q - target).square().mean(dim=1).sum(), q

    def actor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, log pi (B,)): mean of alpha log pi(a|s) - min_i Q_i(s, a) over a ~ pi(.|s)."""
        actions, log_prob = self.sample_action(obs)
        q = self.critic(obs, actions).min(dim=0).values
        return (self.alpha * log_prob - q).mean(), log_prob

    def temperature_loss(self, log_prob: torch.Tensor) -> torch.Tensor:
        """-alpha * (log pi + target entropy), averaged: alpha grows while the entropy is below target."""
        return -(self.log_alpha.exp() * (log_prob.detach() + self.target_entropy)).mean()

    # --- learning -------------------------------------------------------------------------------------
    def update(self, batch: Batch, *, updates: int, env_steps: int) -> Mapping[str, torch.Tensor]:
        obs = self.obs_normalizer.normalize(batch.obs)
        next_obs = self.obs_normalizer.normalize(batch.next_obs)
        actor_turn = updates % self.cfg.policy_frequency == 0
        if actor_turn and self.cfg.actor_first:
            self._actor_and_temperature_steps(obs)
        metrics = self._critic_step(obs, batch.actions, batch.rewards, next_obs, batch.discounts)
        if actor_turn and not self.cfg.actor_first:
            self._actor_and_temperature_steps(obs)
        self._polyak_update()
        return {**metrics, **self.actor_metrics}

    def _critic_step(self, obs, actions, rewards, next_obs, discounts) -> dict[str, torch.Tensor]:
        with update_autocast(self.device, self.precision):  # the forward passes; backward follows their dtypes
            loss, q = self.critic_loss(obs, actions, rewards, next_obs, discounts)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        q = q.detach()
        return {"losses/critic": loss.detach(), "losses/q1_values": q[0].mean(), "losses/q2_values": q[1].mean()}

    def _actor_and_temperature_steps(self, obs: torch.Tensor) -> None:
        for _ in range(self.cfg.policy_frequency):
            with update_autocast(self.device, self.precision):
                loss, log_prob = self.actor_loss(obs)
            self.actor_optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=list(self.actor.parameters()))  # the critic's gradients are not needed
            self.actor_optimizer.step()
            temperature_loss = self.temperature_loss(log_prob)
            self.temperature_optimizer.zero_grad(set_to_none=True)
            temperature_loss.backward()
            self.temperature_optimizer.step()
        self.actor_metrics = {"losses/actor": loss.detach(), "losses/alpha": self.alpha,
                              "losses/alpha_loss": temperature_loss.detach(),
                              "losses/entropy": -log_prob.detach().mean()}

    @torch.no_grad()
    def _polyak_update(self) -> None:
        """target <- (1 - tau) target + tau online, for every critic parameter."""
        torch._foreach_lerp_(list(self.target_critic.parameters()), list(self.critic.parameters()), self.cfg.tau)

    @torch.no_grad()
    def _sync_target(self) -> None:
        self.target_critic.load_state_dict(self.critic.state_dict())

    # --- interventions --------------------------------------------------------------------------------
    def intervention_networks(self, batch: Batch | None) -> list[fire.registry.Network]:
        return [fire.registry.Network(name, network, self.init_snapshots[name], heads=HEADS[name])
                for name, network in self.networks.items()]

    def after_intervention(self, options: fire.registry.Options, *, replaced_modules: bool) -> None:
        self._sync_target()
        if options.reset_optimizer:
            self.actor_optimizer, self.critic_optimizer = self._make_network_optimizers()
        if options.reset_temperature:
            with torch.no_grad():
                self.log_alpha.fill_(math.log(self.cfg.initial_temperature))
            self.temperature_optimizer = torch.optim.Adam([self.log_alpha], lr=self.cfg.temperature_lr)

    @torch.no_grad()
    def diagnostics(self, batch: Batch) -> Mapping[str, float]:
        """Per network: dormant ratios, ranks and norms of the encoder's features on the batch (the ReLU
        outputs for mlp; SimBa's embedding, every residual block's output and the final LayerNorm, as the
        paper's SAC code), weight norms and DfI, as plasticity/<network>/*."""
        obs = self.obs_normalizer.normalize(batch.obs)
        inputs = {"actor": (obs,), "critic": (obs, batch.actions)}
        metrics: dict[str, float] = {}
        for name, network in self.networks.items():
            found = fire.activation_metrics(network, inputs[name], layers=self._feature_layers(network))
            found.update(fire.weight_metrics(network))
            metrics.update({f"plasticity/{name}/{key}": value for key, value in found.items()})
        return metrics

    def _feature_layers(self, network: torch.nn.Module) -> list[str]:
        encoders = [name for name, m in network.named_modules() if name.endswith("encoder")]
        if self.cfg.net.kind == "mlp":
            return [f"{e}.{i}" for e in encoders for i, m in enumerate(network.get_submodule(e))
                    if isinstance(m, torch.nn.ReLU)]
        return [f"{e}.{i}" for e in encoders for i in range(len(network.get_submodule(e)))]
