"""Environments: gymnasium tasks, HumanoidBench H1 tasks (registered as h1-*-v0), Atari via ale-py,
MinAtar (registered as minatar-*-v0)."""

import envs.h1  # noqa: F401  (registers h1-*-v0, also in async vector-env workers)
import envs.minatar  # noqa: F401  (registers minatar-*-v0)
from envs.make import make_vector, normalized_score, supports_state

__all__ = ["make_vector", "normalized_score", "supports_state"]
