"""Walk over stepped pyramids (stair) or triangular ramps (slide) at 1 m/s (spec §4.8, §4.9)."""

from __future__ import annotations

import mujoco
import numpy as np

from envs.h1.task import register_task
from envs.h1.tasks.locomotion import _Locomotion
from envs.h1.tasks.scene import add_box
from envs.h1.tolerance import tolerance

_WALL_RGBA = (0.5, 0.5, 0.55, 1.0)
_STEP_RGBA = (0.65, 0.6, 0.5, 1.0)


class _Climbing(_Locomotion):
    """Walk's reward with height measured from each foot, so it holds on raised ground, and a
    looser upright threshold (0.5). Ends only when the torso is nearly horizontal (u < 0.1)."""

    speed = 1.0
    upright_threshold = 0.5

    def standing(self, data) -> float:
        head_z = self.robot.head_height(data)
        return tolerance(head_z - data.site_xpos[self.robot.left_foot_site, 2], bounds=(1.2, np.inf),
                         margin=0.45) * tolerance(head_z - data.site_xpos[self.robot.right_foot_site, 2],
                                                  bounds=(1.2, np.inf), margin=0.45)

    def terminated(self, model, data) -> bool:
        return bool(self.robot.torso_upright(data) < 0.1)


@register_task
class Stair(_Climbing):
    """Four pyramids of five 0.6 m deep, 0.18 m high steps (first riser at x = 0.5, top 0.90 m),
    0.6 m apart, between side walls with inner faces at y = ±4.95."""

    name = "stair"
    random_score = 3.112
    PYRAMID_X = (3.2, 9.2, 15.2, 21.2)
    STEPS = 5
    STEP_RISE, STEP_DEPTH, HALF_WIDTH = 0.18, 0.6, 5.0
    # (centre, half-sizes): side walls spanning x ∈ [−2, 29], 4 m high, and the back wall.
    WALLS = (
        ((13.5, -5.05, 2.0), (15.5, 0.1, 2.0)),
        ((13.5, 5.05, 2.0), (15.5, 0.1, 2.0)),
        ((-2.1, 0.0, 2.0), (0.1, 7.25, 2.0)),
    )

    def add_scene(self, spec):
        for centre, half_size in self.WALLS:
            add_box(spec.worldbody, centre, half_size, rgba=_WALL_RGBA)
        for x in self.PYRAMID_X:
            # Layer k is a slab one step narrower on each side than layer k − 1.
            for k in range(self.STEPS):
                half_length = (2 * self.STEPS - 1 - 2 * k) * self.STEP_DEPTH / 2
                centre = (x, 0.0, self.STEP_RISE * (k + 0.5))
                add_box(spec.worldbody, centre, (half_length, self.HALF_WIDTH, self.STEP_RISE / 2), rgba=_STEP_RGBA)


@register_task
class Slide(_Climbing):
    """Nine triangular ramps, each rising 1.75 m over 5 m (≈19°) and falling over the next 5 m,
    between side walls with inner faces at y = ±5."""

    name = "slide"
    random_score = 3.191
    # The ramp prism's six vertices in its own frame; ramps are repeated every 10 m along x.
    RAMP_VERTICES = (
        (0.3, -5.0, 0.0), (0.3, 5.0, 0.0),
        (5.3, -5.0, 1.75), (5.3, 5.0, 1.75),
        (10.3, -5.0, 0.0), (10.3, 5.0, 0.0),
    )
    RAMP_X = tuple(10.0 * i for i in range(9))
    # (centre, half-sizes): side walls spanning x ∈ [−4.15, 101.85], 8 m high, and the back wall.
    WALLS = (
        ((48.85, -5.15, 4.0), (53.0, 0.15, 4.0)),
        ((48.85, 5.15, 4.0), (53.0, 0.15, 4.0)),
        ((-4.0, 0.0, 4.0), (0.15, 5.15, 4.0)),
    )

    def add_scene(self, spec):
        for centre, half_size in self.WALLS:
            add_box(spec.worldbody, centre, half_size, rgba=_WALL_RGBA)
        spec.add_mesh(name="ramp", uservert=np.ravel(self.RAMP_VERTICES))
        for x in self.RAMP_X:
            spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname="ramp", pos=(x, 0.0, 0.0),
                                    rgba=_STEP_RGBA)
