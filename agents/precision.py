"""Learner precision: fp32, or bf16 autocast in the encoders with float32 heads, losses and weights.

With precision=bf16 an agent runs its update inside `update_autocast`: matmuls and convolutions of the
encoders take bf16 inputs (fp32 accumulation), which CPUs with AVX512-BF16/AMX and recent GPUs run
several times faster than fp32. Parameters, optimiser moments, target networks, the heads and every loss
stay float32 (`OutputLinear`), and acting and evaluation never autocast.
"""

from __future__ import annotations

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, owner: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"{owner}: precision={precision!r} is unknown; allowed: {', '.join(PRECISIONS)}")


def update_autocast(device: torch.device, precision: str) -> torch.autocast:
    """The context an update runs in: bf16 autocast for precision=bf16, a disabled one for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


class OutputLinear(nn.Linear):
    """An nn.Linear that computes in float32 even inside a bf16 autocast region: the layers whose outputs
    are read as Q-values, means or log-stds. bf16's 8-bit mantissa would round a Q-value of 100 to a step
    of 0.5. Outside autocast it is a plain nn.Linear (same parameters, same state_dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float())
