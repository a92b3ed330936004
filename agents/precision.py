"""Learner precision: fp32, or bf16 autocast in the encoders with float32 heads, losses and weights.

With precision=bf16 an agent runs its update inside `update_autocast`: matmuls and convolutions of the
encoders take bf16 inputs (fp32 accumulation), which CPUs with AVX512-BF16/AMX and recent GPUs run
several times faster than fp32. Parameters, optimiser moments, target networks, the heads and every loss
stay float32 (`OutputLinear`), and acting and evaluation never autocast.

Without native bf16 arithmetic, torch emulates it: on an AVX2-only x86 CPU a bf16 GEMM ran ~200x and a
SAC update ~10x slower than fp32 (bench/README.md). `native_bf16` tells which devices have it; train.py
refuses precision=bf16 elsewhere, while the agents themselves accept it on any device (tests use that).
"""

from __future__ import annotations

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, owner: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"{owner}: precision={precision!r} is unknown; allowed: {', '.join(PRECISIONS)}")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 matrices in hardware: x86 AVX512-BF16 or AMX-BF16, ARM BF16
    (NEON or SVE), CUDA compute capability 8.0+. Other devices (mps) are trusted."""
    if device.type == "cpu":
        capabilities = torch.cpu.get_capabilities()
        return any(capabilities.get(name, False) for name in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return True


def precisions_on(device: torch.device) -> tuple[str, ...]:
    """The learner precisions that run at full speed on `device`: fp32, and bf16 where it is native."""
    return tuple(p for p in PRECISIONS if p != "bf16" or native_bf16(device))


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
