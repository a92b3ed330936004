"""Shared fixtures: the optional ../shared reference data; headless MuJoCo rendering."""

import os
from pathlib import Path

import pytest

if "DISPLAY" not in os.environ:  # as train.py does: offscreen MuJoCo rendering, before mujoco is imported
    os.environ.setdefault("MUJOCO_GL", "egl")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's ../shared folder (specs, reference data); absent on users' machines."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} is absent (only the team's checkouts have it)")
    return SHARED
