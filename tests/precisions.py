"""The learner precisions that learning tests through train.py run in: bf16 only on CPUs that train.py
accepts it on (native bf16); elsewhere it is skipped with that reason."""

import pytest
import torch

from agents.precision import PRECISIONS, precisions_on

LEARNER_PRECISIONS = [
    pytest.param(p, marks=pytest.mark.skipif(
        p not in precisions_on(torch.device("cpu")),
        reason=f"this CPU has no native {p} (AVX512-BF16, AMX or ARM BF16), so train.py refuses precision={p}"))
    for p in PRECISIONS
]
