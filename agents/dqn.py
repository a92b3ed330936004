"""DQN: a Nature-CNN or MinAtar Q-network, a hard-copied target network, epsilon-greedy acting, TD updates."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import fire
import fire.registry
from agents import minatar_net, nature_cnn
from agents.base import AgentBase
from agents.optim import fused_adam_supported
from agents.precision import check_precision, update_autocast
from fire.options import option
from replay.base import Batch

# agent.net -> (Q-network class, the layer initialisation ReDo re-draws from)
NETWORKS = {"nature": (nature_cnn.QNetwork, nature_cnn.init_layer),
            "minatar": (minatar_net.MinAtarQNetwork, minatar_net.init_layer)}

@dataclass(frozen=True)
class DQNConfig:
    """agent.* keys of agent=dqn (configs/agent/dqn.yaml holds the values). Steps are the loop's env_steps."""

    learning_rate: float = option(doc="learning rate", gt=0.0)
    adam_eps: float = option(doc="Adam epsilon", gt=0.0)
    net: Literal["nature", "minatar"] = option(doc="Q-network: nature (Nature CNN, 84x84 frame stacks) or minatar "
                                               "(Young & Tian 2019: 3x3 conv of 16, hidden_dim units)")
    optimizer: Literal["adam", "rmsprop"] = option(doc="adam, or rmsprop (centered, as in the MinAtar paper's code)")
    rmsprop_alpha: float = option(doc="RMSProp gradient and squared-gradient momentum", gt=0.0, lt=1.0)
    rmsprop_eps: float = option(doc="RMSProp minimum squared gradient", gt=0.0)
    loss: Literal["huber", "mse"] = option(doc="TD loss: huber (smooth L1, delta 1) or mse")
    double_dqn: bool = option(doc="the online net picks the next action, the target net values it")
    dueling: bool = option(doc="Q = V + A - mean(A) head")
    hidden_dim: int = option(doc="width of the Linear layer after the conv encoder", ge=1)
    max_grad_norm: float | None = option(doc="clip the gradient's global L2 norm; null = no clipping", gt=0.0)
    clip_rewards: bool = option(doc="sign(r) in the TD target (raw scores are still logged); use with n_step 1")
    target_update_env_steps: int = option(doc="hard copy online -> target each time env_steps crosses a multiple",
                                          ge=1)
    target_update_updates: int | None = option(doc="or after every this many updates (overrides "
                                               "target_update_env_steps; Nature DQN's C; priming_updates count)",
                                               ge=1)
    learning_starts: int = option(doc="the run's learning_starts: epsilon held at epsilon_start until then", ge=0)
    epsilon_start: float = option(doc="epsilon-greedy exploration, linear from start ...", ge=0.0, le=1.0)
    epsilon_end: float = option(doc="... to end", ge=0.0, le=1.0)
    exploration_fraction: float = option(doc="... over this fraction of total_env_steps after learning_starts",
                                         ge=0.0, le=1.0)
    exploration_env_steps: int | None = option(doc="or over this many env_steps (overrides exploration_fraction)",
                                               ge=0)
    total_env_steps: int = option(doc="the run's total_env_steps, for exploration_fraction", ge=1)
    eval_epsilon: float = option(doc="epsilon of act(explore=False)", ge=0.0, le=1.0)


class DQN(AgentBase):
    """Deep Q-learning for discrete actions on uint8 frame stacks.

    Counting: act() and update() are given the loop's env_steps. The epsilon schedule reads act()'s; update()
    copies the online network into the target the first time its env_steps has crossed a multiple of
    target_update_env_steps (with 4 envs and replay ratio 1 that is every 500 vector steps = 2000 updates, as
    in the paper's CleanRL code), or, with target_update_updates, after every that many updates: the env stands
    still during heavy priming, so only the second keeps the target moving through priming's updates.

    Interventions touch `q_network`; the target network then follows it, and Adam is kept unless
    reset_optimizer=true (the paper's code). FIRE and S&P default to the paper's hybrids (reset_linear):
    convolutions orthogonalised (or shrunk), Linear layers back to theta_0. Plasticity injection replaces the
    head, so Adam and the target are rebuilt.
    """

    CONFIG = DQNConfig
    NETWORKS = ("q_network",)
    STATE = ("q_network", "target_q_network", "optimizer", "init_snapshot", "rng", "target_synced_at_env_steps",
             "plasticity_injected")
    PROVIDES = frozenset({"heads", "inputs", "replace_modules"})
    REINIT_DEFAULTS = {"reset_optimizer": False, "reset_linear": True}

    def __init__(
        self,
        observation_space: gymnasium.spaces.Box,
        action_space: gymnasium.spaces.Discrete,
        device: str | torch.device,
        precision: str = "fp32",
        **cfg: Any,
    ):
        check_precision(precision, "DQN")
        self.cfg = cfg = self.config_from(cfg)
        self.device = torch.device(device)
        self.precision = precision
        self.num_actions = int(action_space.n)
        # NHWC conv weights on CPU: oneDNN's channels-last kernels make an update up to 1.3x faster there
        # (bench/dqn_speed.py); values are the same, only the layout of the weights differs.
        layout = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        network, self.init_layer = NETWORKS[cfg.net]
        self.q_network = network(self.num_actions, observation_space.shape[0], cfg.hidden_dim, cfg.dueling).to(
                                 self.device, memory_format=layout)
        self.init_snapshot = fire.InitSnapshot.capture(self.q_network)
        self.target_q_network = network(self.num_actions, observation_space.shape[0], cfg.hidden_dim,
                                        cfg.dueling).to(self.device, memory_format=layout)
        self.target_q_network.requires_grad_(False)
        self._sync_target()
        self.optimizer = self._make_optimizer()
        # The loop seeds torch before building agents; exploration draws derive from that seed.
        self.rng = np.random.default_rng(torch.initial_seed())
        self.target_synced_at_env_steps = 0
        self.plasticity_injected = False

    def _make_optimizer(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.q_network.parameters() if p.requires_grad]
        if self.cfg.optimizer == "rmsprop":
            # Centered RMSProp as in the MinAtar code: torch's alpha is both the gradient and the
            # squared-gradient momentum (0.95 each there), eps the minimum squared gradient term.
            return torch.optim.RMSprop(trainable, lr=self.cfg.learning_rate, alpha=self.cfg.rmsprop_alpha,
                                       eps=self.cfg.rmsprop_eps, centered=True)
        # One fused kernel instead of a chain of foreach ops: the same Adam, ~1.1x faster updates on CPU.
        return torch.optim.Adam(trainable, lr=self.cfg.learning_rate, eps=self.cfg.adam_eps,
                                fused=fused_adam_supported(self.device))

    @torch.no_grad()
    def _sync_target(self) -> None:
        self.target_q_network.load_state_dict(self.q_network.state_dict())

    # --- acting ---------------------------------------------------------------------------------------
    def epsilon(self, env_steps: int) -> float:
        """epsilon_start until learning_starts, then linear to epsilon_end over the exploration steps."""
        cfg = self.cfg
        decay_steps = cfg.exploration_env_steps
        if decay_steps is None:
            decay_steps = cfg.exploration_fraction * cfg.total_env_steps
        progress = (env_steps - cfg.learning_starts) / max(decay_steps, 1)
        progress = min(max(progress, 0.0), 1.0)
        return cfg.epsilon_start + progress * (cfg.epsilon_end - cfg.epsilon_start)

    @torch.no_grad()
    def act(self, obs: np.ndarray, *, env_steps: int, explore: bool) -> np.ndarray:
        """(num_envs,) int64 epsilon-greedy actions for uint8 stacks (num_envs, stack, 84, 84)."""
        epsilon = self.epsilon(env_steps) if explore else self.cfg.eval_epsilon
        num_envs = obs.shape[0]
        random_actions = self.rng.integers(0, self.num_actions, num_envs)
        explore_mask = self.rng.random(num_envs) < epsilon
        if explore_mask.all():
            return random_actions
        greedy = self.q_network(torch.as_tensor(obs, device=self.device)).argmax(dim=1).cpu().numpy()
        return np.where(explore_mask, random_actions, greedy).astype(np.int64)

    def observe(self, obs: np.ndarray) -> None:
        """DQN has no observation normaliser (pixels are divided by 255 in the network)."""

    # --- learning -------------------------------------------------------------------------------------
    @torch.no_grad()
    def td_target(self, batch: Batch) -> torch.Tensor:
        """(B,) r + discounts * Q_target(s', a'), a' = argmax of the target (or, double DQN, online) net."""
        rewards = batch.rewards.sign() if self.cfg.clip_rewards else batch.rewards
        next_q_target = self.target_q_network(batch.next_obs)  # (B, A)
        if self.cfg.double_dqn:
            next_actions = self.q_network(batch.next_obs).argmax(dim=1, keepdim=True)
        else:
            next_actions = next_q_target.argmax(dim=1, keepdim=True)
        next_value = next_q_target.gather(1, next_actions).squeeze(1)
        return rewards + batch.discounts * next_value

    def update(self, batch: Batch, *, updates: int, env_steps: int) -> Mapping[str, torch.Tensor]:
        with update_autocast(self.device, self.precision):
            target = self.td_target(batch)
            q = self.q_network(batch.obs).gather(1, batch.actions.long().unsqueeze(1)).squeeze(1)  # (B,)
        if self.cfg.loss == "huber":
            loss = F.smooth_l1_loss(q, target)
        else:
            loss = F.mse_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q_network.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()

        self._follow_target(updates, env_steps)
        return {"losses/td_loss": loss.detach(), "losses/q_values": q.detach().mean()}

    def _follow_target(self, updates: int, env_steps: int) -> None:
        """Copy online -> target after the update numbered `updates` (0-based) at env step `env_steps`."""
        if self.cfg.target_update_updates is not None:
            if (updates + 1) % self.cfg.target_update_updates == 0:
                self._sync_target()
            return
        period = self.cfg.target_update_env_steps
        if env_steps // period > self.target_synced_at_env_steps // period:
            self._sync_target()
            self.target_synced_at_env_steps = env_steps

    # --- interventions --------------------------------------------------------------------------------
    def intervention_networks(self, batch: Batch | None) -> list[fire.registry.Network]:
        return [fire.registry.Network("q_network", self.q_network, self.init_snapshot, heads=("head",),
                                      optimizer=self.optimizer, inputs=None if batch is None else (batch.obs,),
                                      init_layer=self.init_layer)]

    def after_intervention(self, options: fire.registry.Options, *, replaced_modules: bool) -> None:
        """Injected heads are new tensors: a fresh Adam, and the target rebuilt to the same structure."""
        if replaced_modules:
            self.target_q_network = copy.deepcopy(self.q_network).requires_grad_(False)
            self.plasticity_injected = True
        if options.reset_optimizer or replaced_modules:
            self.optimizer = self._make_optimizer()
        self._sync_target()

    def prepare_load(self, state: Mapping[str, Any]) -> None:
        if state["plasticity_injected"] and not self.plasticity_injected:
            self.reinit("pi", {}, None)  # rebuild the injected structure; its values come next

    @torch.no_grad()
    def diagnostics(self, batch: Batch) -> Mapping[str, float]:
        """Dormant ratios, feature ranks and norms on batch.obs, plus weight norms and DfI, as plasticity/*."""
        metrics = fire.activation_metrics(self.q_network, (batch.obs,))
        metrics.update(fire.weight_metrics(self.q_network))
        return {f"plasticity/{name}": value for name, value in metrics.items()}
