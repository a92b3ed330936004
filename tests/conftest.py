"""Shared fixtures: the optional ../shared reference data."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's ../shared folder (specs, reference data); absent on users' machines."""
    if not SHARED.is_dir():
        pytest.skip(f"reference data folder {SHARED} is absent (only the team's checkouts have it)")
    return SHARED
