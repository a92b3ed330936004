"""SAC's networks: MLP (CleanRL) and SimBa (Lee et al. 2025) encoders, the tanh-Gaussian actor, twin critics,
and the running observation normaliser.

Every weight sits in an ordinary nn.Linear (heads: its float32 subclass OutputLinear), so the interventions
in `fire` see each layer, each critic
of the twin separately. The normaliser is a separate module that the agent owns beside the networks,
so no intervention on the actor or critics can touch its statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from agents.precision import OutputLinear
from fire.lapack import one_thread
from fire.options import option


@dataclass(frozen=True)
class _Gaussian:
    normalize_obs: bool = option(doc="running mean/std observation normaliser")
    log_std_min: float = option(doc="the actor's log-std is tanh-squashed into [min, max]")
    log_std_max: float = option(doc="upper end of that range")

    def __post_init__(self):
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"agent.net.log_std_min={self.log_std_min} must be below "
                             f"agent.net.log_std_max={self.log_std_max}")


@dataclass(frozen=True)
class MlpNet(_Gaussian):
    """agent/net=mlp: CleanRL's SAC networks."""

    kind: Literal["mlp"] = option(doc="CleanRL's ReLU MLPs, PyTorch default init")
    hidden_dims: list[int] = option(doc="hidden widths of actor and critic MLPs", ge=1)


@dataclass(frozen=True)
class SimbaNet(_Gaussian):
    """agent/net=simba: SimBa's residual networks (the FIRE paper's SAC)."""

    kind: Literal["simba"] = option(doc="SimBa: Linear -> residual LayerNorm blocks -> LayerNorm")
    actor_hidden_dim: int = option(doc="actor width", ge=1)
    actor_blocks: int = option(doc="actor residual blocks", ge=0)
    critic_hidden_dim: int = option(doc="critic width", ge=1)
    critic_blocks: int = option(doc="critic residual blocks", ge=0)
    expansion: int = option(doc="block width = expansion * hidden", ge=1)


def mlp_encoder(in_dim: int, hidden_dims: Sequence[int]) -> nn.Sequential:
    """Linear -> ReLU for each hidden width, PyTorch's default init (CleanRL's SAC)."""
    layers: list[nn.Module] = []
    for width in hidden_dims:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers)


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm whose scale and shift are applied as a product and a sum.

    Same parameters and outputs (to float32 rounding), but the gradients of weight and bias come from
    autograd's sums over the batch, which give the same bits at 1 and 2 threads; torch's fused CPU kernel
    splits those sums by thread, so SimBa's updates would depend on the thread count (loop/threads.py).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, eps=self.eps) * self.weight + self.bias


class ResidualBlock(nn.Module):
    """SimBa's pre-LayerNorm MLP block: x + Linear(ReLU(Linear(LN(x)))), hidden -> expansion*hidden -> hidden."""

    def __init__(self, hidden_dim: int, expansion: int):
        super().__init__()
        self.norm = LayerNorm(hidden_dim)
        self.fc1 = nn.Linear(hidden_dim, expansion * hidden_dim)
        self.fc2 = nn.Linear(expansion * hidden_dim, hidden_dim)
        for fc in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")  # He-normal, as SimBa
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


def orthogonal_(weight: torch.Tensor) -> None:
    """nn.init.orthogonal_ at one thread: its QR gives the same bits at any thread count (fire/lapack.py)."""
    with one_thread():
        nn.init.orthogonal_(weight)


def simba_encoder(in_dim: int, hidden_dim: int, blocks: int, expansion: int) -> nn.Sequential:
    """Linear (orthogonal init) -> `blocks` residual blocks -> LayerNorm."""
    embed = nn.Linear(in_dim, hidden_dim)
    orthogonal_(embed.weight)
    nn.init.zeros_(embed.bias)
    residual_blocks = (ResidualBlock(hidden_dim, expansion) for _ in range(blocks))
    return nn.Sequential(embed, *residual_blocks, LayerNorm(hidden_dim))


def make_encoder(in_dim: int, net: Mapping[str, Any], role: str) -> tuple[nn.Sequential, int]:
    """(encoder, feature width) for role "actor" or "critic" from the agent.net config."""
    if net["kind"] == "mlp":
        return mlp_encoder(in_dim, net["hidden_dims"]), net["hidden_dims"][-1]
    hidden = net[f"{role}_hidden_dim"]
    return simba_encoder(in_dim, hidden, net[f"{role}_blocks"], net["expansion"]), hidden


def _head(features: int, out: int, orthogonal: bool) -> nn.Linear:
    head = OutputLinear(features, out)
    if orthogonal:
        orthogonal_(head.weight)
        nn.init.zeros_(head.bias)
    return head


class Actor(nn.Module):
    """obs (B, obs_dim) -> mean, log_std (B, action_dim) of the Gaussian before the tanh squash.

    Separate `mean` and `log_std` heads (FIRE orthogonalises each on its own). log_std is squashed by a
    tanh into [log_std_min, log_std_max] so its gradient never dies at a hard clip.
    """

    def __init__(self, obs_dim: int, action_dim: int, net: Mapping[str, Any]):
        super().__init__()
        self.encoder, features = make_encoder(obs_dim, net, "actor")
        simba = net["kind"] == "simba"
        self.mean = _head(features, action_dim, orthogonal=simba)
        self.log_std = _head(features, action_dim, orthogonal=simba)
        self.log_std_min, self.log_std_max = float(net["log_std_min"]), float(net["log_std_max"])

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(obs)
        log_std = torch.tanh(self.log_std(features))
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1.0)
        return self.mean(features), log_std


class Critic(nn.Module):
    """(obs, action) -> Q (B,): an encoder on their concatenation and a Linear `head` to one value."""

    def __init__(self, obs_dim: int, action_dim: int, net: Mapping[str, Any]):
        super().__init__()
        self.encoder, features = make_encoder(obs_dim + action_dim, net, "critic")
        self.head = _head(features, 1, orthogonal=net["kind"] == "simba")

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(torch.cat([obs, action], dim=-1))).squeeze(-1)


class TwinCritic(nn.Module):
    """Clipped double-Q: two independently initialised Critics `members.0` and `members.1`."""

    def __init__(self, obs_dim: int, action_dim: int, net: Mapping[str, Any]):
        super().__init__()
        self.members = nn.ModuleList(Critic(obs_dim, action_dim, net) for _ in range(2))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(2, B) Q-values, one row per critic."""
        return torch.stack([q(obs, action) for q in self.members])


class RunningMeanStd(nn.Module):
    """Observation normaliser: running mean and variance (Chan et al.'s parallel update) in float64 buffers.

    The statistics are buffers, so they are in state_dict (exact resume) but not parameters (no
    optimiser, no intervention). normalize() returns float32 (obs - mean) / sqrt(var + eps);
    with enabled=False it is the identity and update() does nothing.
    """

    def __init__(self, shape: tuple[int, ...], enabled: bool = True, eps: float = 1e-8):
        super().__init__()
        self.enabled, self.eps = enabled, eps
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        # A tiny prior weight on (0, 1), as gymnasium's normaliser: no division by zero before data.
        self.register_buffer("count", torch.full((), 1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold in a batch (N, *shape)."""
        if not self.enabled:
            return
        x = x.to(torch.float64)
        n = x.shape[0]
        batch_mean, batch_var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x.float()
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).float()
