"""native_bf16 reads the CPU's instruction sets: bf16 counts only where the hardware multiplies it."""

import pytest
import torch

from agents.precision import native_bf16


@pytest.mark.parametrize(("capabilities", "native"), [
    ({"avx2": True, "avx512_f": True}, False),  # AVX-512 without its BF16 extension: emulated
    ({"avx2": True, "avx512_bf16": True}, True),  # Zen 4, Cooper Lake and later
    ({"amx_bf16": True}, True),  # Sapphire Rapids
    ({"neon": True, "bf16": True}, True),  # ARMv8.6 (Graviton 3)
    ({"neon": True}, False),
])
def test_cpu_bf16_follows_the_instruction_sets(monkeypatch, capabilities, native):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert native_bf16(torch.device("cpu")) is native


def test_cuda_without_a_gpu_has_no_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bf16(torch.device("cuda")) is False
