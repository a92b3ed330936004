"""SAC: twin critics with a clipped double-Q target, a tanh-squashed Gaussian actor, a learned temperature."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F

import fire
from agents.networks import NET_KINDS, Actor, RunningMeanStd, TwinCritic
from agents.optim import fused_adam_supported
from agents.precision import check_precision, update_autocast
from replay.base import Batch

# What each intervention touches is in SAC.reinit's docstring. ReDo and plasticity injection are not
# offered: fire.redo_ needs a plain Linear -> activation chain, which the actor's two parallel heads and
# SimBa's LayerNorm residual blocks are not, and the paper's SAC code has no plasticity injection.
REINIT_METHODS = ("fire", "reset", "snp", "head_reset")
# The paper's SAC code rebuilds every optimiser and the temperature at an intervention (spec §1.7, §3).
_STATE_DEFAULTS = {"reset_optimizer": True, "reset_temperature": True}
REINIT_OPTIONS: dict[str, dict[str, Any]] = {
    # conv_scale is accepted because reinit/fire.yaml always sets it; SAC's networks have no convolutions.
    "fire": {"iterations": 10, "method": "newton_schulz", "conv_scale": "official", **_STATE_DEFAULTS},
    "reset": dict(_STATE_DEFAULTS),
    "snp": {"shrink": 0.8, "noise": "init", "noise_scale": 0.01, **_STATE_DEFAULTS},
    "head_reset": {"layers": None, **_STATE_DEFAULTS},
}
HEADS = ("actor.mean", "actor.log_std", "critic.members.0.head", "critic.members.1.head")
NET_KEYS = {
    "mlp": {"kind", "hidden_dims", "normalize_obs", "log_std_min", "log_std_max"},
    "simba": {"kind", "actor_hidden_dim", "actor_blocks", "critic_hidden_dim", "critic_blocks", "expansion",
              "normalize_obs", "log_std_min", "log_std_max"},
}
LOG_2 = math.log(2.0)
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class SAC:
    """Soft actor-critic (Haarnoja et al. 2018) for Box actions, CleanRL's or SimBa's networks (agent.net).

    One update: critic step on the clipped double-Q soft target, then (every `policy_frequency`-th
    update, `policy_frequency` times, CleanRL's delayed-actor compensation) an actor step and a temperature
    step, then Polyak-averaged target critics. `actor_first=true` runs the actor and temperature steps
    before the critic step instead, SimBa's order. Observations are normalised by a running mean/std
    (agent.net.normalize_obs) that observe() updates; the replay keeps raw observations.

    Networks declared to interventions: `actor` and `critic` (both members of the twin); the target
    critics always follow the critic (see reinit()).
    """

    REINIT_METHODS = REINIT_METHODS  # loop.config reads it from the class to refuse others at start-up

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
        self.cfg = cfg = self._validated(cfg)
        self.device = torch.device(device)
        self.precision = precision
        self.batch_size = cfg["batch_size"]
        obs_dim, action_dim = observation_space.shape[0], action_space.shape[0]
        self.action_dtype = action_space.dtype
        # Actions in the env's units: scale * tanh(u) + bias.
        low, high = (torch.as_tensor(b, dtype=torch.float32, device=self.device) for b in (action_space.low,
                                                                                           action_space.high))
        self.action_scale, self.action_bias = (high - low) / 2.0, (high + low) / 2.0
        self.log_action_scale = self.action_scale.log().sum()

        net = cfg["net"]
        self.obs_normalizer = RunningMeanStd((obs_dim,), enabled=net["normalize_obs"]).to(self.device)
        self.actor = Actor(obs_dim, action_dim, net).to(self.device)
        self.critic = TwinCritic(obs_dim, action_dim, net).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.init_snapshots = {name: fire.InitSnapshot.capture(network) for name, network in self.networks.items()}

        target_entropy = cfg["target_entropy"]
        self.target_entropy = -float(action_dim) if target_entropy == "auto" else float(target_entropy) * action_dim
        self.log_alpha = torch.tensor(math.log(cfg["initial_temperature"]), device=self.device, requires_grad=True)
        self.actor_optimizer, self.critic_optimizer = self._make_network_optimizers()
        self.temperature_optimizer = torch.optim.Adam([self.log_alpha], lr=cfg["temperature_lr"])
        self.updates = 0
        self.actor_metrics: dict[str, torch.Tensor] = {}  # from the latest actor step (delayed actor)

    @property
    def networks(self) -> dict[str, torch.nn.Module]:
        return {"actor": self.actor, "critic": self.critic}

    @staticmethod
    def _validated(cfg: dict[str, Any]) -> dict[str, Any]:
        allowed = {"gamma", "batch_size", "actor_lr", "critic_lr", "temperature_lr", "weight_decay", "tau",
                   "policy_frequency", "initial_temperature", "target_entropy", "actor_first", "net"}
        cfg = {k: v for k, v in cfg.items() if k != "name"}
        unknown, missing = sorted(set(cfg) - allowed), sorted(allowed - set(cfg))
        if unknown:
            raise ValueError(f"SAC: unknown config key(s) {unknown}; allowed: {sorted(allowed)}")
        if missing:
            raise ValueError(f"SAC: missing config key(s) {missing} (see configs/agent/sac.yaml)")
        net = cfg["net"]
        if net.get("kind") not in NET_KINDS:
            raise ValueError(f"SAC: agent.net.kind={net.get('kind')!r}; allowed: {NET_KINDS}")
        if set(net) != NET_KEYS[net["kind"]]:
            raise ValueError(f"SAC: agent.net for kind={net['kind']} has keys {sorted(net)}; "
                             f"expected {sorted(NET_KEYS[net['kind']])}")
        target = cfg["target_entropy"]
        if target != "auto" and (isinstance(target, bool) or not isinstance(target, int | float)):
            raise ValueError(f"SAC: target_entropy={target!r}; allowed: auto (-|A|) or a number c (c * |A|)")
        if not cfg["initial_temperature"] > 0:
            raise ValueError(f"SAC: initial_temperature={cfg['initial_temperature']} must be > 0")
        if not 0.0 < cfg["tau"] <= 1.0:
            raise ValueError(f"SAC: tau={cfg['tau']} must lie in (0, 1]")
        if not (isinstance(cfg["policy_frequency"], int) and cfg["policy_frequency"] >= 1):
            raise ValueError(f"SAC: policy_frequency={cfg['policy_frequency']!r} must be an integer >= 1")
        return cfg

    def _make_network_optimizers(self) -> tuple[torch.optim.AdamW, torch.optim.AdamW]:
        # AdamW on every parameter; weight_decay=0 makes it exactly Adam (CleanRL), 1e-2 is SimBa's.
        cfg, fused = self.cfg, fused_adam_supported(self.device)
        return (torch.optim.AdamW(self.actor.parameters(), lr=cfg["actor_lr"], weight_decay=cfg["weight_decay"],
                                  fused=fused),
                torch.optim.AdamW(self.critic.parameters(), lr=cfg["critic_lr"], weight_decay=cfg["weight_decay"],
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
    def update(self, batch: Batch) -> Mapping[str, torch.Tensor]:
        obs = self.obs_normalizer.normalize(batch.obs)
        next_obs = self.obs_normalizer.normalize(batch.next_obs)
        actor_turn = self.updates % self.cfg["policy_frequency"] == 0
        if actor_turn and self.cfg["actor_first"]:
            self._actor_and_temperature_steps(obs)
        metrics = self._critic_step(obs, batch.actions, batch.rewards, next_obs, batch.discounts)
        if actor_turn and not self.cfg["actor_first"]:
            self._actor_and_temperature_steps(obs)
        self._polyak_update()
        self.updates += 1
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
        for _ in range(self.cfg["policy_frequency"]):
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
        torch._foreach_lerp_(list(self.target_critic.parameters()), list(self.critic.parameters()), self.cfg["tau"])

    @torch.no_grad()
    def _sync_target(self) -> None:
        self.target_critic.load_state_dict(self.critic.state_dict())

    # --- interventions --------------------------------------------------------------------------------
    def reinit(self, method: str, options: Mapping[str, Any], batch: Batch) -> Mapping[str, Any]:
        """Apply `method` to the actor and both critics; the target critics are then set to the critics.

        fire: every Linear weight orthogonalised (heads included; biases and LayerNorms kept), as the
            paper's SimBa code.  reset: every parameter <- theta_0.  snp: theta <- (1 - shrink) theta +
            shrink theta_0 (options.noise=fresh: Ash & Adams' fresh noise).  head_reset: the output
            layers (actor mean and log-std, both critic heads; or options.layers, names like
            "critic.members.0.head") <- theta_0.
        reset_optimizer (default true): fresh actor and critic AdamW states.  reset_temperature (default
        true): temperature back to initial_temperature with a fresh optimiser. Both defaults are the
        paper's SAC code (spec §1.7). The observation normaliser is never touched, and torch's generator is
        not re-seeded (the JAX code resets its key to PRNGKey(seed); we keep the run's one stream).
        """
        if method not in REINIT_METHODS:
            raise ValueError(f"SAC.reinit: method={method!r}; allowed: {REINIT_METHODS} (redo needs plain "
                             "Linear-activation chains, pi is DQN-only in the paper)")
        if options.get("linear") is not None:
            raise ValueError(f"SAC.reinit({method!r}): linear={options['linear']!r} is a DQN option; SAC "
                             "orthogonalises every Linear layer (leave reinit.linear null)")
        options = {k: v for k, v in options.items() if k != "linear"}
        unknown = sorted(set(options) - set(REINIT_OPTIONS[method]))
        if unknown:
            raise ValueError(
                f"SAC.reinit({method!r}): unknown option(s) {unknown}; allowed: {sorted(REINIT_OPTIONS[method])}"
            )
        opts = {**REINIT_OPTIONS[method], **{k: v for k, v in options.items() if v is not None}}
        if method == "head_reset":
            reports = self._head_reset(opts["layers"] or HEADS)
        else:
            reports = {name: self._reinit_network(method, opts, network, self.init_snapshots[name])
                       for name, network in self.networks.items()}
        self._sync_target()
        if opts["reset_optimizer"]:
            self.actor_optimizer, self.critic_optimizer = self._make_network_optimizers()
        if opts["reset_temperature"]:
            with torch.no_grad():
                self.log_alpha.fill_(math.log(self.cfg["initial_temperature"]))
            self.temperature_optimizer = torch.optim.Adam([self.log_alpha], lr=self.cfg["temperature_lr"])
        return reports

    @staticmethod
    def _reinit_network(method: str, opts: Mapping[str, Any], network: torch.nn.Module,
                        snapshot: fire.InitSnapshot) -> fire.Report:
        if method == "fire":
            return fire.fire_(network, iterations=opts["iterations"], method=opts["method"],
                              conv_scale=opts["conv_scale"])
        if method == "reset":
            return fire.reset_(network, snapshot)
        return fire.shrink_perturb_(network, snapshot, shrink=opts["shrink"], noise=opts["noise"],
                                    noise_scale=opts["noise_scale"])

    def _head_reset(self, layers: list[str]) -> dict[str, fire.Report]:
        by_network: dict[str, list[str]] = {}
        for layer in layers:
            network, _, module = layer.partition(".")
            if network not in self.networks or not module:
                raise ValueError(f"SAC.reinit('head_reset'): layers entry {layer!r} must be <network>.<module> "
                                 f"with network one of {sorted(self.networks)}")
            by_network.setdefault(network, []).append(module)
        return {network: fire.head_reset_(self.networks[network], self.init_snapshots[network], modules)
                for network, modules in by_network.items()}

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
        if self.cfg["net"]["kind"] == "mlp":
            return [f"{e}.{i}" for e in encoders for i, m in enumerate(network.get_submodule(e))
                    if isinstance(m, torch.nn.ReLU)]
        return [f"{e}.{i}" for e in encoders for i in range(len(network.get_submodule(e)))]

    # --- checkpointing --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimisers, temperature, normaliser, init snapshots, counters. The agent
        draws its noise from torch's global generator, which the loop checkpoints."""
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "temperature_optimizer": self.temperature_optimizer.state_dict(),
            "init_snapshots": {name: snapshot.state_dict() for name, snapshot in self.init_snapshots.items()},
            "updates": self.updates,
            "actor_metrics": dict(self.actor_metrics),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.target_critic.load_state_dict(state["target_critic"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.temperature_optimizer.load_state_dict(state["temperature_optimizer"])
        for name, snapshot in self.init_snapshots.items():
            snapshot.load_state_dict(state["init_snapshots"][name])
        self.updates = int(state["updates"])
        self.actor_metrics = {k: v.to(self.device) for k, v in state["actor_metrics"].items()}
