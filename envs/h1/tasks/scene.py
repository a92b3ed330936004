"""Scene building blocks shared by the obstacle tasks: static boxes and contact tests.

Task geoms keep MuJoCo's default contact parameters (friction (1, 0.005, 0.0001), condim 3,
contype = conaffinity = 1), as the benchmark's scene files do (spec §7.9).
"""

from __future__ import annotations

from collections.abc import Iterable

import mujoco
import numpy as np

FLOOR_GEOM = 0  # the robot spec adds the floor plane first, so it is geom 0 (spec §1.1)

Vec3 = tuple[float, float, float]


def add_box(body: mujoco.MjsBody, centre: Vec3, half_size: Vec3, name: str = "", **attributes) -> mujoco.MjsGeom:
    """A colliding box on `body` (the world body for static scenery), centre in the body frame;
    `attributes` go to `MjsBody.add_geom` (rgba, density...)."""
    return body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=centre, size=half_size, **attributes)


def geom_mask(model: mujoco.MjModel, geom_ids: Iterable[int]) -> np.ndarray:
    """(ngeom,) bool, True at `geom_ids`: lets a contact test run as one fancy-indexing lookup."""
    mask = np.zeros(model.ngeom, dtype=bool)
    mask[list(geom_ids)] = True
    return mask


def contact_pairs(data: mujoco.MjData) -> np.ndarray:
    """(ncon, 2) geom ids of the contacts found by the last substep's collision pass."""
    return data.contact.geom


def touches(data: mujoco.MjData, mask: np.ndarray) -> bool:
    """True if any current contact involves a geom flagged in `mask` ((ngeom,) bool)."""
    return bool(mask[contact_pairs(data)].any())
