"""Plasticity diagnostics: SFE, DfI, dormant units, feature ranks and norms (spec section 2.2).

Everything is torch-only and one forward pass or one Gram matrix per layer, cheap enough to log every
few thousand updates. Feature matrices are (batch, units); conv maps (batch, channels, *space) are
reduced to (batch, channels) by averaging |h| (dormancy) or h (ranks, norms) over space.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from fire._hooks import record_outputs
from fire.lapack import one_thread

# Activation modules whose outputs activation_metrics watches by default.
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.Softplus)
WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _as_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


@torch.no_grad()
def sfe(a: Tensor | Iterable[Tensor], b: Tensor | Iterable[Tensor]) -> float:
    """Squared Frobenius error sum ||a - b||_F^2, in float64; lists of tensors are summed layer-wise."""
    return sum(
        float((x.double() - y.double()).square().sum()) for x, y in zip(_as_list(a), _as_list(b), strict=True)
    )


def fire_gain(shape: Sequence[int], groups: int = 1, conv_scale: str = "official") -> float:
    """The gain FIRE gives the polar factor of each block of a weight of this shape (out, in/groups, *k):
    sqrt(d_out/d_in) for a Linear (Muon's RMS->RMS scale); sqrt(d_out/d_in) / c per spatial tap and group
    of a conv, with c = prod(k) ("official", the authors' code) or sqrt(prod(k)) ("rms"); see fire_conv."""
    taps = math.prod(shape[2:])
    divisor = taps if conv_scale == "official" else math.sqrt(taps)
    return math.sqrt((shape[0] // groups) / shape[1]) / divisor


@torch.no_grad()
def dfi(W: Tensor, groups: int = 1, conv_scale: str = "official") -> float:
    """Deviation from the isometry FIRE targets: sum over blocks of ||G - g^2 I||_F^2 (0 after exact FIRE).

    A Linear weight (out, in) is one block; a conv kernel (out, in/groups, *k) has one block per spatial
    tap and group, as FIRE orthogonalises them. G is a block's Gram matrix on its SMALL side (W W^T when
    out <= in, else W^T W) and g = fire_gain(...), so the target is FIRE's scaled isometry: for a
    non-square Linear, sqrt(d_out/d_in) * polar(W). (The paper's ||W W^T - I||^2, spec 1.1, is the square
    case; on a tall PyTorch W it is at least out - in whatever W is, and FIRE's scale never reaches it.)
    """
    if W.ndim < 2:
        raise ValueError(f"dfi: W must have at least 2 dims (out, in, ...), got shape {tuple(W.shape)}")
    d_out, d_in = W.shape[:2]
    blocks = W.reshape(groups, d_out // groups, d_in, -1).permute(3, 0, 1, 2)  # (taps, groups, out_g, in_g)
    M = blocks.double() if blocks.dtype == torch.float64 else blocks.float()
    G = M @ M.mT if M.shape[-2] <= M.shape[-1] else M.mT @ M
    G.diagonal(dim1=-2, dim2=-1).sub_(fire_gain(W.shape, groups, conv_scale) ** 2)
    return float(_sum_of_squares(G))


def _sum_of_squares(t: Tensor) -> Tensor:
    """Sum of t's squares, row sums first: one sum over a large tensor splits into per-thread partial sums,
    which gives other bits at another thread count; row sums and their sum (one row per thread) do not."""
    return t.square().reshape(-1, t.shape[-1] if t.ndim else 1).sum(-1).sum()


def normalized_sfe(
    before: Tensor | Iterable[Tensor], after: Tensor | Iterable[Tensor], init: Tensor | Iterable[Tensor]
) -> float:
    """SFE(before, after) / SFE(before, init): 1 for a full reset, 0 for no change (NaN if before == init)."""
    denominator = sfe(before, init)
    return sfe(before, after) / denominator if denominator > 0 else math.nan


def _unit_scores(activations: Tensor) -> Tensor:
    """Mean |h| per unit (N,) from (B, N) or (B, C, *space) activations."""
    if activations.ndim < 2:
        raise ValueError(f"activations must be (batch, units, ...), got shape {tuple(activations.shape)}")
    h = activations.detach().float().abs()
    if h.ndim > 2:
        h = h.flatten(2).mean(2)
    return h.mean(0)


def dormant_mask(activations: Tensor, tau: float) -> Tensor:
    """Bool (N,): units whose normalised score s_j = score_j / (mean_k score_k + 1e-9) is <= tau.

    score_j = mean over the batch (and space, for conv maps) of |h_j| (ReDo, Sokar et al. 2023).
    tau = 0 means "exactly silent": isclose(s_j, 0).
    """
    scores = _unit_scores(activations)
    normalised = scores / (scores.mean() + 1e-9)
    if tau == 0:
        return torch.isclose(normalised, torch.zeros_like(normalised))
    return normalised <= tau


def dormant_ratio(activations: Tensor, tau: float) -> float:
    """Fraction (0..1, not percent) of tau-dormant units in (B, N) or (B, C, *space) activations."""
    return float(dormant_mask(activations, tau).float().mean())


def _feature_matrix(features: Tensor) -> Tensor:
    if features.ndim < 2:
        raise ValueError(f"features must be (batch, units, ...), got shape {tuple(features.shape)}")
    f = features.detach().float()
    return f.flatten(2).mean(2) if f.ndim > 2 else f


def _singular_values(features: Tensor) -> Tensor:
    with one_thread():  # the same bits at any thread count (fire/lapack.py)
        return torch.linalg.svdvals(_feature_matrix(features).double())


def _first_index_reaching(mass: Tensor, fraction: float) -> int:
    """1-based count k: smallest k with cumulative normalised mass[:k] >= fraction (0 if no mass)."""
    total = mass.sum()
    if total <= 0:
        return 0
    cumulative = torch.cumsum(mass, 0) / total
    return int(torch.searchsorted(cumulative, torch.tensor([fraction - 1e-12], dtype=cumulative.dtype))) + 1


def effective_rank(features: Tensor) -> float:
    """Roy & Vetterli effective rank exp(H(p)) with p_i = sigma_i / sum sigma of the (B, N) features."""
    sigma = _singular_values(features)
    if sigma.sum() <= 0:
        return 0.0
    p = sigma / sigma.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def srank(features: Tensor, delta: float = 0.01) -> int:
    """srank_delta (Kumar et al. 2021): smallest k whose top-k singular values hold 1 - delta of the sum."""
    return _first_index_reaching(_singular_values(features), 1.0 - delta)


def pca_rank(features: Tensor, threshold: float = 0.99) -> int:
    """Smallest k whose top-k squared singular values hold `threshold` of the total variance."""
    return _first_index_reaching(_singular_values(features).square(), threshold)


def feature_rank(features: Tensor, eps: float = 0.01) -> int:
    """Lyle et al. 2022: #{sigma_i / sqrt(B) > eps} for B rows of features."""
    batch = features.shape[0]
    return int((_singular_values(features) / math.sqrt(batch) > eps).sum())


def feature_norm(features: Tensor) -> float:
    """Mean over the batch of the per-sample L2 norm of the features (all non-batch dims flattened)."""
    return float(features.detach().float().flatten(1).norm(dim=1).mean())


def _tau_key(tau: float) -> str:
    return f"dormant_{float(tau)}"


@torch.no_grad()
def activation_metrics(
    module: nn.Module,
    inputs: Tensor | tuple,
    taus: Sequence[float] = (0.0, 0.025, 0.1),
    layers: Sequence[str] | None = None,
) -> dict[str, float]:
    """Dormant ratios, ranks and feature norms of chosen layers' outputs on one forward pass.

    layers: qualified submodule names whose outputs are read; default every activation module
    (ReLU, GELU, ...; functional activations are invisible, so pass layers then). Runs module(*inputs)
    in eval mode (BatchNorm statistics are not updated; training flags are restored afterwards).

    Keys: "dormant_<tau>/<layer>" and pooled "dormant_<tau>" (dormant units / all units), plus
    "effective_rank/<layer>", "srank/<layer>", "feature_rank/<layer>", "pca_rank/<layer>",
    "feature_norm/<layer>". A module called twice in one forward gets "<layer>#1" for the second call.
    """
    if layers is None:
        layers = [name for name, m in module.named_modules() if isinstance(m, ACTIVATIONS)]
        if not layers:
            raise ValueError("activation_metrics: no activation module found; pass layers=[qualified names]")
    outputs = record_outputs(module, inputs, layers, eval_mode=True)
    metrics: dict[str, float] = {}
    for tau in taus:
        key = _tau_key(tau)
        dormant = total = 0
        for layer, h in outputs.items():
            mask = dormant_mask(h, tau)
            metrics[f"{key}/{layer}"] = float(mask.float().mean())
            dormant += int(mask.sum())
            total += mask.numel()
        metrics[key] = dormant / total
    for layer, h in outputs.items():
        sigma = _singular_values(h)
        metrics[f"effective_rank/{layer}"] = effective_rank(h)
        metrics[f"srank/{layer}"] = float(_first_index_reaching(sigma, 0.99))
        metrics[f"pca_rank/{layer}"] = float(_first_index_reaching(sigma.square(), 0.99))
        metrics[f"feature_rank/{layer}"] = float((sigma / math.sqrt(h.shape[0]) > 0.01).sum())
        metrics[f"feature_norm/{layer}"] = feature_norm(h)
    return metrics


@torch.no_grad()
def weight_metrics(module: nn.Module) -> dict[str, float]:
    """Per-layer DfI (against FIRE's target isometry, see dfi) and weight/bias norms of every Linear/ConvNd,
    the DfI total and the parameter norm.

    Keys: "dfi/<layer>", "weight_norm/<layer>", "bias_norm/<layer>", "dfi" (sum over layers),
    "param_norm" (L2 norm of all parameters, each tied Parameter once).
    """
    metrics: dict[str, float] = {}
    total_dfi = 0.0
    for name, m in module.named_modules():
        if not isinstance(m, WEIGHTED_LAYERS):
            continue
        metrics[f"dfi/{name}"] = layer_dfi = dfi(m.weight, getattr(m, "groups", 1))
        total_dfi += layer_dfi
        metrics[f"weight_norm/{name}"] = float(m.weight.detach().float().norm())
        if m.bias is not None:
            metrics[f"bias_norm/{name}"] = float(m.bias.detach().float().norm())
    metrics["dfi"] = total_dfi
    metrics["param_norm"] = math.sqrt(
        sum(float(_sum_of_squares(p.detach().double())) for p in module.parameters())
    )
    return metrics
