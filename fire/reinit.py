"""FIRE: replace each chosen weight by its (scaled) orthogonal polar factor, in place."""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

from fire._select import Selector, owned_parameters, require_nonempty, select_modules
from fire.diagnostics import dfi, fire_gain, sfe
from fire.polar import newton_schulz, polar_svd
from fire.report import LayerReport, Report

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
POLARS = ("newton_schulz", "svd")
CONV_SCALES = ("official", "rms")


def _orthogonalise(W: Tensor, polar: str, iterations: int, eps: float) -> Tensor:
    return newton_schulz(W, iterations, eps) if polar == "newton_schulz" else polar_svd(W)


def fire_linear(W: Tensor, polar: str = "newton_schulz", iterations: int = 10, eps: float = 1e-7) -> Tensor:
    """sqrt(d_out/d_in) * polar(W) for a Linear weight (d_out, d_in): Muon's RMS->RMS scale."""
    return fire_gain(W.shape) * _orthogonalise(W, polar, iterations, eps)


def fire_conv(
    W: Tensor,
    groups: int = 1,
    polar: str = "newton_schulz",
    conv_scale: str = "official",
    iterations: int = 10,
    eps: float = 1e-7,
) -> Tensor:
    """Orthogonalise every spatial tap of a conv kernel (d_out, d_in/groups, *k) in one batched call.

    Each tap W[:, :, i, j] (per group) is a d_out x d_in matrix; all taps are stacked on the batch dims
    and orthogonalised together, then the kernel is scaled by sqrt(d_out/d_in) / c with c = prod(k)
    ("official", the authors' code) or c = sqrt(prod(k)) ("rms").

    Why "rms" gives layer gain ~1: one output position is y = sum over the K = prod(k) taps of W_t x_t,
    where x_t is the input at tap t's offset. With inputs uncorrelated across taps, each of RMS sigma,
    and tall taps W_t = s * Q_t (Q_t orthonormal columns, s = sqrt(d_out/d_in) / c), each term has
    E||W_t x_t||^2 = s^2 d_in sigma^2, so E||y||^2 = K s^2 d_in sigma^2 and RMS(y)/RMS(x) = c^-1 sqrt(K).
    c = K ("official") gives gain 1/sqrt(K) (1/k for a k x k kernel); c = sqrt(K) gives gain 1, the
    conv analogue of the Linear rule. (For wide taps the same holds for inputs in each tap's row space.)
    With groups > 1 each group's (d_out/groups) x (d_in/groups) block is a separate matrix.
    """
    d_out, d_in_per_group = W.shape[:2]
    kernel = W.shape[2:]
    # (d_out, d_in_g, *k) -> (*k, groups, d_out_g, d_in_g): the taps and groups become batch dims.
    blocks = W.reshape(groups, d_out // groups, d_in_per_group, *kernel)
    blocks = blocks.movedim((1, 2), (-2, -1))
    Q = _orthogonalise(blocks, polar, iterations, eps)
    Q = Q.movedim((-2, -1), (1, 2)).reshape(W.shape)
    return fire_gain(W.shape, groups, conv_scale) * Q


def _check_options(iterations: int, polar: str, conv_scale: str) -> None:
    if polar not in POLARS:
        raise ValueError(f"polar={polar!r} is not one of {POLARS}")
    if conv_scale not in CONV_SCALES:
        raise ValueError(f"conv_scale={conv_scale!r} is not one of {CONV_SCALES}")
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def fire_(
    module: nn.Module,
    *,
    iterations: int = 10,
    polar: str = "newton_schulz",
    conv_scale: str = "official",
    include: Selector = None,
    exclude: Selector = None,
    eps: float = 1e-7,
) -> Report:
    """Apply FIRE in place to the weights of module's Linear and Conv1d/2d/3d layers; return a Report.

    Linear: W <- sqrt(d_out/d_in) * NS(W). ConvNd: each tap orthogonalised, then
    * sqrt(d_out/d_in)/prod(k) ("official", as in the authors' code) or /sqrt(prod(k)) ("rms", see
    fire_conv). polar="svd" uses the exact polar factor instead of `iterations` Newton-Schulz steps.

    include/exclude pick layers among the Linear/ConvNd modules: a sequence of nn.Module subclasses and/or
    fnmatch patterns on qualified names (["*.to_q", "*.to_k"]), or a predicate (name, module) -> bool.
    Biases, norm layers, embeddings and buffers are untouched, except a Parameter tied to a chosen
    weight (e.g. a token embedding tied to the LM head), which changes with it: a shared Parameter is
    transformed once. Weights are overwritten with copy_, so optimisers keep their references.
    """
    _check_options(iterations, polar, conv_scale)
    eligible = [
        (name, m)
        for name, m in select_modules(module, include, exclude, lambda _n, _m: True)
        if isinstance(m, (nn.Linear, *CONVS))
    ]
    require_nonempty(eligible, "fire_")
    report = Report(f"fire[{polar}]")
    for owned in owned_parameters(eligible, attrs=("weight",)):
        W = owned.param
        _synchronize(W.device)
        start = time.perf_counter()
        groups = getattr(owned.module, "groups", 1)
        if isinstance(owned.module, nn.Linear):
            new = fire_linear(W, polar, iterations, eps)
        else:
            new = fire_conv(W, groups, polar, conv_scale, iterations, eps)
        _synchronize(W.device)
        seconds = time.perf_counter() - start
        layer = LayerReport(
            owned.name,
            tuple(W.shape),
            "fire" + (f" (tied: {', '.join(owned.aliases)})" if owned.aliases else ""),
            sfe(W, new),
            dfi(W, groups, conv_scale),
            dfi(new, groups, conv_scale),
            seconds,
        )
        W.copy_(new)
        report.layers.append(layer)
    return report
