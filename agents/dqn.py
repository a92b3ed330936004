"""DQN: a Nature-CNN or MinAtar Q-network, a hard-copied target network, epsilon-greedy acting, TD updates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import fire
from agents.minatar_net import MinAtarQNetwork
from agents.nature_cnn import QNetwork
from agents.optim import fused_adam_supported
from agents.precision import check_precision, update_autocast
from replay.base import Batch

LOSSES = ("huber", "mse")
NETWORKS = {"nature": QNetwork, "minatar": MinAtarQNetwork}  # agent.net -> Q-network class
OPTIMIZERS = ("adam", "rmsprop")
REINIT_METHODS = ("fire", "reset", "snp", "head_reset", "redo", "pi")
# Options each intervention accepts, with defaults (the FIRE paper's DQN semantics, spec §1.6, §1.7, §3).
REINIT_OPTIONS: dict[str, dict[str, Any]] = {
    "fire": {"linear": "reset", "iterations": 10, "method": "newton_schulz", "conv_scale": "official",
             "reset_optimizer": False},
    "reset": {"reset_optimizer": False},
    "snp": {"shrink": 0.8, "noise": "init", "noise_scale": 0.01, "reset_optimizer": False},
    "head_reset": {"reset_optimizer": False},
    "redo": {"tau": 0.1},
    "pi": {},
}
FIRE_LINEAR = ("reset", "orthogonalize")


class DQN:
    """Deep Q-learning for discrete actions on uint8 frame stacks.

    Counting: the agent does not see the loop's counters directly; it keeps the largest `env_steps` it
    was given in act(). The epsilon schedule reads it, and update() copies the online network into the
    target after the first update once env_steps has crossed a multiple of target_update_env_steps (with
    4 envs and replay ratio 1 that is every 500 vector steps = 2000 updates, as in the paper's CleanRL code).

    Networks declared to interventions: `q_network` (the target always follows it, see reinit()).
    """

    REINIT_METHODS = REINIT_METHODS  # loop.config reads it from the class to refuse others at start-up

    def __init__(
        self,
        observation_space: gymnasium.spaces.Box,
        action_space: gymnasium.spaces.Discrete,
        device: str | torch.device,
        precision: str = "fp32",
        **cfg: Any,
    ):
        check_precision(precision, "DQN")
        cfg = self._validated(cfg)
        self.cfg = cfg
        self.device = torch.device(device)
        self.precision = precision
        self.num_actions = int(action_space.n)
        self.batch_size = cfg["batch_size"]
        # NHWC conv weights on CPU: oneDNN's channels-last kernels make an update ~1.3x faster there
        # (bench/dqn_speed.py); values are the same, only the layout of the weights differs.
        layout = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        network = NETWORKS[cfg["net"]]
        self.q_network = network(self.num_actions, observation_space.shape[0], cfg["hidden_dim"], cfg["dueling"]).to(
            self.device, memory_format=layout
        )
        self.init_snapshot = fire.InitSnapshot.capture(self.q_network)
        self.target_q_network = network(
            self.num_actions, observation_space.shape[0], cfg["hidden_dim"], cfg["dueling"]
        ).to(self.device, memory_format=layout)
        self.target_q_network.requires_grad_(False)
        self._sync_target()
        self.optimizer = self._make_optimizer()
        # The loop seeds torch before building agents; exploration draws derive from that seed.
        self.rng = np.random.default_rng(torch.initial_seed())
        self.env_steps = 0
        self.updates = 0
        self.target_synced_at_env_steps = 0
        self.plasticity_injected = False

    @staticmethod
    def _validated(cfg: dict[str, Any]) -> dict[str, Any]:
        allowed = {
            "gamma", "batch_size", "learning_rate", "adam_eps", "loss", "double_dqn", "dueling", "hidden_dim",
            "max_grad_norm", "clip_rewards", "target_update_env_steps", "learning_starts", "epsilon_start",
            "epsilon_end", "exploration_fraction", "exploration_env_steps", "total_env_steps", "eval_epsilon",
            "net", "optimizer", "rmsprop_alpha", "rmsprop_eps",
        }  # fmt: skip
        cfg = {k: v for k, v in cfg.items() if k != "name"}
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ValueError(f"DQN: unknown config key(s) {unknown}; allowed: {sorted(allowed)}")
        missing = sorted(allowed - set(cfg))
        if missing:
            raise ValueError(f"DQN: missing config key(s) {missing} (see configs/agent/dqn.yaml)")
        if cfg["loss"] not in LOSSES:
            raise ValueError(f"DQN: loss={cfg['loss']!r}; allowed: {LOSSES}")
        if cfg["net"] not in NETWORKS:
            raise ValueError(f"DQN: net={cfg['net']!r}; allowed: {tuple(NETWORKS)}")
        if cfg["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"DQN: optimizer={cfg['optimizer']!r}; allowed: {OPTIMIZERS}")
        if cfg["target_update_env_steps"] < 1:
            raise ValueError(f"DQN: target_update_env_steps={cfg['target_update_env_steps']} must be >= 1")
        return cfg

    def _make_optimizer(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.q_network.parameters() if p.requires_grad]
        if self.cfg["optimizer"] == "rmsprop":
            # Centered RMSProp as in the MinAtar code: torch's alpha is both the gradient and the
            # squared-gradient momentum (0.95 each there), eps the minimum squared gradient term.
            return torch.optim.RMSprop(trainable, lr=self.cfg["learning_rate"], alpha=self.cfg["rmsprop_alpha"],
                                       eps=self.cfg["rmsprop_eps"], centered=True)
        # One fused kernel instead of a chain of foreach ops: the same Adam, ~1.1x faster updates on CPU.
        return torch.optim.Adam(trainable, lr=self.cfg["learning_rate"], eps=self.cfg["adam_eps"],
                                fused=fused_adam_supported(self.device))

    @torch.no_grad()
    def _sync_target(self) -> None:
        self.target_q_network.load_state_dict(self.q_network.state_dict())

    # --- acting ---------------------------------------------------------------------------------------
    def epsilon(self, env_steps: int) -> float:
        """epsilon_start until learning_starts, then linear to epsilon_end over the exploration steps."""
        cfg = self.cfg
        decay_steps = cfg["exploration_env_steps"]
        if decay_steps is None:
            decay_steps = cfg["exploration_fraction"] * cfg["total_env_steps"]
        progress = (env_steps - cfg["learning_starts"]) / max(decay_steps, 1)
        progress = min(max(progress, 0.0), 1.0)
        return cfg["epsilon_start"] + progress * (cfg["epsilon_end"] - cfg["epsilon_start"])

    @torch.no_grad()
    def act(self, obs: np.ndarray, *, env_steps: int, explore: bool) -> np.ndarray:
        """(num_envs,) int64 epsilon-greedy actions for uint8 stacks (num_envs, stack, 84, 84)."""
        self.env_steps = max(self.env_steps, env_steps)
        epsilon = self.epsilon(env_steps) if explore else self.cfg["eval_epsilon"]
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
        rewards = batch.rewards.sign() if self.cfg["clip_rewards"] else batch.rewards
        next_q_target = self.target_q_network(batch.next_obs)  # (B, A)
        if self.cfg["double_dqn"]:
            next_actions = self.q_network(batch.next_obs).argmax(dim=1, keepdim=True)
        else:
            next_actions = next_q_target.argmax(dim=1, keepdim=True)
        next_value = next_q_target.gather(1, next_actions).squeeze(1)
        return rewards + batch.discounts * next_value

    def update(self, batch: Batch) -> Mapping[str, torch.Tensor]:
        with update_autocast(self.device, self.precision):
            target = self.td_target(batch)
            q = self.q_network(batch.obs).gather(1, batch.actions.long().unsqueeze(1)).squeeze(1)  # (B,)
        if self.cfg["loss"] == "huber":
            loss = F.smooth_l1_loss(q, target)
        else:
            loss = F.mse_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg["max_grad_norm"] is not None:
            nn.utils.clip_grad_norm_(self.q_network.parameters(), self.cfg["max_grad_norm"])
        self.optimizer.step()
        self.updates += 1

        period = self.cfg["target_update_env_steps"]
        if self.env_steps // period > self.target_synced_at_env_steps // period:
            self._sync_target()
            self.target_synced_at_env_steps = self.env_steps
        return {"losses/td_loss": loss.detach(), "losses/q_values": q.detach().mean()}

    # --- interventions --------------------------------------------------------------------------------
    def reinit(self, method: str, options: Mapping[str, Any], batch: Batch) -> Mapping[str, Any]:
        """Apply `method` to the Q-network; the target network is then synced to the new online network.

        fire: the paper's DQN hybrid: every conv weight orthogonalised per tap (biases kept), every Linear
            layer reset to theta_0 (options.linear=orthogonalize orthogonalises them instead).
        reset: every parameter <- theta_0.  snp (SR-DQN): convs <- 0.2 theta + 0.8 theta_0 (options.shrink),
            Linear layers <- theta_0.  head_reset: Linear layers <- theta_0.  redo: tau-dormant units
            recycled (options.tau), their Adam moments zeroed.  pi: plasticity injection on the head
            (old head frozen, trainable copy of theta_0 added, a fresh Adam).
        Adam state is kept (reset_optimizer=true rebuilds it), as in the paper's code, except for pi.
        """
        if method not in REINIT_METHODS:
            raise ValueError(f"DQN.reinit: method={method!r}; allowed: {REINIT_METHODS}")
        unknown = sorted(set(options) - set(REINIT_OPTIONS[method]))
        if unknown:
            raise ValueError(
                f"DQN.reinit({method!r}): unknown option(s) {unknown}; allowed: {sorted(REINIT_OPTIONS[method])}"
            )
        opts = {**REINIT_OPTIONS[method], **options}
        net, snapshot = self.q_network, self.init_snapshot
        if method == "fire":
            if opts["linear"] not in FIRE_LINEAR:
                raise ValueError(f"DQN.reinit('fire'): linear={opts['linear']!r}; allowed: {FIRE_LINEAR}")
            fire_kw = {"iterations": opts["iterations"], "method": opts["method"], "conv_scale": opts["conv_scale"]}
            convs = fire.fire_(net, include=[nn.Conv2d], **fire_kw)
            if opts["linear"] == "reset":
                linears = fire.reset_(net, snapshot, include=[nn.Linear])
            else:
                linears = fire.fire_(net, include=[nn.Linear], **fire_kw)
            report = fire.Report.merge(convs, linears)
        elif method == "reset":
            report = fire.reset_(net, snapshot)
        elif method == "snp":
            convs = fire.shrink_perturb_(net, snapshot, shrink=opts["shrink"], noise=opts["noise"],
                                         noise_scale=opts["noise_scale"], include=[nn.Conv2d])
            report = fire.Report.merge(convs, fire.reset_(net, snapshot, include=[nn.Linear]))
        elif method == "head_reset":
            report = fire.head_reset_(net, snapshot, ["head"])
        elif method == "redo":
            report = fire.redo_(net, (batch.obs,), tau=opts["tau"], optimizer=self.optimizer)
        else:
            report = self._inject_plasticity()
        if opts.get("reset_optimizer", False):
            self.optimizer = self._make_optimizer()
        self._sync_target()
        return {"q_network": report}

    def _inject_plasticity(self) -> fire.Report:
        if self.plasticity_injected:
            raise ValueError("DQN.reinit('pi'): plasticity was already injected into this Q-network")
        report = fire.inject_plasticity_(self.q_network, self.init_snapshot, "head")
        fire.inject_plasticity_(self.target_q_network, self.init_snapshot, "head")  # same structure
        self.plasticity_injected = True
        self.optimizer = self._make_optimizer()  # the trainable head tensors are new
        return report

    @torch.no_grad()
    def diagnostics(self, batch: Batch) -> Mapping[str, float]:
        """Dormant ratios, feature ranks and norms on batch.obs, plus weight norms and DfI, as plasticity/*."""
        metrics = fire.activation_metrics(self.q_network, (batch.obs,))
        metrics.update(fire.weight_metrics(self.q_network))
        return {f"plasticity/{name}": value for name, value in metrics.items()}

    # --- checkpointing --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "q_network": self.q_network.state_dict(),
            "target_q_network": self.target_q_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "init_snapshot": self.init_snapshot.state_dict(),
            "rng": self.rng.bit_generator.state,
            "env_steps": self.env_steps,
            "updates": self.updates,
            "target_synced_at_env_steps": self.target_synced_at_env_steps,
            "plasticity_injected": self.plasticity_injected,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.init_snapshot.load_state_dict(state["init_snapshot"])
        if state["plasticity_injected"] and not self.plasticity_injected:
            self._inject_plasticity()  # rebuild the injected structure; its values come next
        self.q_network.load_state_dict(state["q_network"])
        self.target_q_network.load_state_dict(state["target_q_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.env_steps = state["env_steps"]
        self.updates = state["updates"]
        self.target_synced_at_env_steps = state["target_synced_at_env_steps"]
