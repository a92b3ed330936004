"""The learner precisions that learning tests through train.py run in: bf16 only on CPUs that train.py
accepts it on (native bf16); elsewhere it is skipped with that reason."""

import pytest
import torch

from agents.precision import native_bf16

LEARNER_PRECISIONS = [
    "fp32",
    pytest.param("bf16", marks=pytest.mark.skipif(
        not native_bf16(torch.device("cpu")),
        reason="this CPU has no native bf16 (AVX512-BF16, AMX or ARM BF16), so train.py refuses precision=bf16")),
]
