"""Run at 5 m/s over ten 0.375 m hurdles in a walled lane (spec §4.10)."""

from __future__ import annotations

from envs.h1.task import register_task
from envs.h1.tasks.locomotion import Run
from envs.h1.tasks.scene import add_box, geom_mask, touches

WALL_DISCOUNT = 0.1  # reward factor while any barrier is touched


@register_task
class Hurdle(Run):
    """Run's reward, with upright threshold 0.8 instead of 0.9, times 0.1 while the robot touches a
    side or back barrier; hitting a hurdle is not discounted. Ends when the pelvis drops below 0.2 m."""

    name = "hurdle"
    random_score = 2.214
    upright_threshold = 0.8
    contact_terms = frozenset({"wall_collision_discount"})
    HURDLE_X = tuple(7.0 * i for i in range(1, 11))
    HURDLE_HALF_SIZE = (0.03, 5.0, 0.1875)
    # name -> (centre, half-sizes): side barriers with inner faces at y = ±4.45 over
    # x ∈ [−0.5, 70.5], 2 m high, and a back barrier with its front face at x = −0.475.
    BARRIERS = {
        "left_barrier_collision": ((35.0, -4.725, 1.0), (35.5, 0.275, 1.0)),
        "right_barrier_collision": ((35.0, 4.725, 1.0), (35.5, 0.275, 1.0)),
        "behind_barrier_collision": ((-0.525, 0.0, 1.0), (0.05, 5.0, 1.0)),
    }

    def add_scene(self, spec):
        for x in self.HURDLE_X:
            centre = (x, 0.0, self.HURDLE_HALF_SIZE[2])
            add_box(spec.worldbody, centre, self.HURDLE_HALF_SIZE, rgba=(0.9, 0.9, 0.9, 1.0))
        for name, (centre, half_size) in self.BARRIERS.items():
            add_box(spec.worldbody, centre, half_size, name=name, rgba=(0.5, 0.5, 0.55, 1.0))

    def bind(self, model):
        self.barrier_mask = geom_mask(model, (model.geom(name).id for name in self.BARRIERS))

    def reward(self, model, data):
        run_reward, info = super().reward(model, data)
        wall_collision_discount = WALL_DISCOUNT if touches(data, self.barrier_mask) else 1.0
        info["wall_collision_discount"] = wall_collision_discount
        return run_reward * wall_collision_discount, info
