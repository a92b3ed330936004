"""Shared fixtures: the optional ../shared reference data; headless MuJoCo rendering."""

from pathlib import Path

import pytest

import envs  # noqa: F401  (headless: picks MuJoCo's offscreen OpenGL backend before mujoco is imported)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's ../shared folder (specs, reference data); absent on users' machines."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} is absent (only the team's checkouts have it)")
    return SHARED
