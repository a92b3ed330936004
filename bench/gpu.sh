#!/usr/bin/env bash
# The GPU checks of this project, in one run of under 8 minutes on a CUDA machine (CI has none):
# the `-m gpu` tests, SAC and DQN updates/s eager vs torch.compile, one FIRE event on CUDA.
#   bash bench/gpu.sh            # prints the figures bench/README.md records under "GPU"
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run this on a GPU machine')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
timeout 180 python -m pytest -m gpu -q -p no:cacheprovider
timeout 300 python -m bench.cuda_speed
