"""Shared fixtures: the optional ../shared reference data; headless MuJoCo rendering; MKL as train.py sets it."""

from pathlib import Path

import pytest

import envs  # noqa: F401  (headless: picks MuJoCo's offscreen OpenGL backend before mujoco is imported)
import loop.threads  # noqa: F401  (MKL's reproducibility mode, as in train.py, before any test's first matmul)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's ../shared folder (specs, reference data); absent on users' machines."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} is absent (only the team's checkouts have it)")
    return SHARED
