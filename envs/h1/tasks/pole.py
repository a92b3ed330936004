"""Walk at 0.5 m/s through a forest of vertical poles without touching them (spec §4.11)."""

from __future__ import annotations

import mujoco

from envs.h1.task import register_task
from envs.h1.tasks.locomotion import _Locomotion
from envs.h1.tasks.scene import add_box, geom_mask, touches

COLLISION_DISCOUNT = 0.1  # reward factor while the robot touches a pole


@register_task
class Pole(_Locomotion):
    """Half stand-tall reward, half move reward (additive, unlike walk), times 0.1 while the robot
    touches a pole. Ends when the pelvis drops below 0.5 m."""

    name = "pole"
    success_bar = 700.0
    random_score = 20.09
    contact_terms = frozenset({"collision_discount"})
    speed = 0.5
    fall_height = 0.5
    ROWS = 41  # row r at x = r m; odd rows hold 4 poles, even rows 3, staggered
    ODD_ROW_Y = (2.25, 0.75, -0.75, -2.25)
    EVEN_ROW_Y = (1.5, 0.0, -1.5)
    POLE_RADIUS, POLE_HALF_HEIGHT = 0.05, 1.0  # 2 m tall, standing on the floor
    # (centre, half-sizes): side barriers with inner faces at y = ±3 over x ∈ [−0.75, 40.75],
    # 2 m high, and a back barrier with its front face at x = −0.45.
    BARRIERS = (
        ((20.0, -3.15, 1.0), (20.75, 0.15, 1.0)),
        ((20.0, 3.15, 1.0), (20.75, 0.15, 1.0)),
        ((-0.6, 0.0, 1.0), (0.15, 3.0, 1.0)),
    )

    def add_scene(self, spec):
        for centre, half_size in self.BARRIERS:
            add_box(spec.worldbody, centre, half_size, rgba=(0.5, 0.5, 0.55, 1.0))
        for row in range(1, self.ROWS + 1):
            for col, y in enumerate(self.ODD_ROW_Y if row % 2 else self.EVEN_ROW_Y, start=1):
                spec.worldbody.add_geom(
                    name=f"pole_r{row}_c{col}", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                    size=(self.POLE_RADIUS, self.POLE_HALF_HEIGHT, 0), pos=(row, y, self.POLE_HALF_HEIGHT),
                    rgba=(0.8, 0.3, 0.2, 1.0),
                )

    def bind(self, model):
        pole_ids = (geom for geom in range(model.ngeom) if model.geom(geom).name.startswith("pole_r"))
        self.pole_mask = geom_mask(model, pole_ids)

    def reward(self, model, data):
        info = self.terms(data)
        # The benchmark exempts pole contacts that involve the floor; MuJoCo never collides two
        # static geoms, so every pole contact involves the robot.
        info["collision_discount"] = COLLISION_DISCOUNT if touches(data, self.pole_mask) else 1.0
        stand = info["small_control"] * info["stand_reward"]
        return (0.5 * stand + 0.5 * info["move"]) * info["collision_discount"], info
