"""FIRE (Frobenius-Isometry REinitialization), baseline interventions and plasticity diagnostics.

Depends on torch only. Every intervention works in place on any nn.Module and returns a Report
(per parameter: SFE, DfI before/after, seconds). DfI is measured against the isometry FIRE targets
(for a Linear sqrt(d_out/d_in) * polar(W), per tap for convs), so a layer FIRE has just set shows ~0
whatever its shape; see fire.dfi. Three lines:

    >>> import fire, torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    >>> report = fire.fire_(model)
    >>> print(report)  # doctest: +ELLIPSIS
    fire[newton_schulz]: 2 parameters changed (dfi: deviation from FIRE's target isometry, ~0 after FIRE)
    parameter  shape  action  sfe ...

A toy ResNet: every Conv and Linear weight is orthogonalised (the authors' vision setting); BatchNorm
affine parameters and running statistics, and all biases, are left alone:

    >>> from torch import nn
    >>> class Block(nn.Module):
    ...     def __init__(self, c):
    ...         super().__init__()
    ...         self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    ...         self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    ...
    ...     def forward(self, x):
    ...         return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
    >>> resnet = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), Block(16), Block(16),
    ...                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    >>> snapshot = fire.InitSnapshot.capture(resnet)  # theta_0, for resets and diagnostics
    >>> # ... train ...
    >>> report = fire.fire_(resnet)                    # conv_scale="rms" for layer gain ~1
    >>> len(report.layers), report.total_sfe > 0      # 5 convs and the Linear head
    (6, True)
    >>> scalars = report.scalars("reinit/fire")        # for a TensorBoard SummaryWriter:
    >>> # for tag, value in scalars.items(): writer.add_scalar(tag, value, env_steps)

A small GPT block, FIRE on the attention queries and keys only (the paper's ViT setting):

    >>> class Attention(nn.Module):
    ...     def __init__(self, d):
    ...         super().__init__()
    ...         self.to_q, self.to_k, self.to_v = (nn.Linear(d, d, bias=False) for _ in range(3))
    ...         self.proj = nn.Linear(d, d)
    >>> block = nn.ModuleDict({"ln1": nn.LayerNorm(64), "attn": Attention(64), "ln2": nn.LayerNorm(64),
    ...                        "mlp": nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64))})
    >>> [layer.name for layer in fire.fire_(block, include=["*.to_q", "*.to_k"]).layers]
    ['attn.to_q.weight', 'attn.to_k.weight']

or by type / predicate: include=[nn.Linear], exclude=lambda name, m: name.startswith("mlp").

Baselines share the call shape: reset_, shrink_perturb_, head_reset_ (need the snapshot), redo_ (needs a
batch of inputs) and inject_plasticity_. Diagnostics: sfe, dfi, normalized_sfe, dormant_ratio,
effective_rank, srank, feature_rank, pca_rank, feature_norm, activation_metrics, weight_metrics.
The interventions a training loop schedules, with typed options, are registered in fire.registry.
"""

from fire.baselines import (
    InjectedHead,
    head_reset_,
    inject_plasticity_,
    redo_,
    reset_,
    shrink_perturb_,
)
from fire.diagnostics import (
    activation_metrics,
    dfi,
    dormant_mask,
    dormant_ratio,
    effective_rank,
    feature_norm,
    feature_rank,
    normalized_sfe,
    pca_rank,
    sfe,
    srank,
    weight_metrics,
)
from fire.polar import newton_schulz, polar_svd
from fire.reinit import fire_, fire_conv, fire_linear
from fire.report import LayerReport, Report
from fire.snapshot import InitSnapshot

__all__ = [
    "InitSnapshot",
    "InjectedHead",
    "LayerReport",
    "Report",
    "activation_metrics",
    "dfi",
    "dormant_mask",
    "dormant_ratio",
    "effective_rank",
    "feature_norm",
    "feature_rank",
    "fire_",
    "fire_conv",
    "fire_linear",
    "head_reset_",
    "inject_plasticity_",
    "newton_schulz",
    "normalized_sfe",
    "pca_rank",
    "polar_svd",
    "redo_",
    "reset_",
    "sfe",
    "shrink_perturb_",
    "srank",
    "weight_metrics",
]
