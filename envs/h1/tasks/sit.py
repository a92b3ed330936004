"""Sit on a chair standing just behind the robot (spec §4.5, §4.6)."""

from __future__ import annotations

import numpy as np

from envs.h1 import rewards
from envs.h1.task import Task, register_task
from envs.h1.tasks.scene import add_box
from envs.h1.tolerance import tolerance

CHAIR_POSITION = (-0.25, 0.0, 0.0)
# The benchmark chair's mass properties. Its mass sits in visual boxes we do not rebuild (the
# collision boxes are massless), so the inertial is stated explicitly. Chair frame.
_CHAIR_INERTIAL = {
    "mass": 15.748,
    "ipos": (-0.0591212, 0.0, 0.479665),
    "iquat": (0.949395, 0.0, -0.314083, 0.0),
    "inertia": (1.02449, 0.925289, 0.546398),
}
# Collision boxes (centre, half-sizes) in the chair frame: the seat block (top at 0.475 m) and
# the backrest plate behind it.
SEAT = ((0.0, 0.0, 0.2375), (0.21, 0.21, 0.2375))
BACKREST = ((-0.23, 0.0, 0.65), (0.02, 0.21, 0.2))


@register_task
class SitSimple(Task):
    """Lower the pelvis to 0.68–0.72 m over the chair's seat with the torso upright, and keep
    still. The chair is fixed to the world. Ends when the pelvis drops below 0.5 m."""

    name = "sit_simple"
    success_bar = 750.0
    random_score = 9.393
    chair_is_free = False

    def add_scene(self, spec):
        chair = spec.worldbody.add_body(name="chair", pos=CHAIR_POSITION)
        chair.explicitinertial = True
        for attribute, value in _CHAIR_INERTIAL.items():
            setattr(chair, attribute, value)
        if self.chair_is_free:
            chair.add_freejoint(name="free_chair")
        colour = (0.55, 0.35, 0.2, 1.0)
        add_box(chair, *SEAT, name="chair_seat", rgba=colour)
        add_box(chair, *BACKREST, name="chair_backrest", rgba=colour)

    def bind(self, model):
        self.chair_body = model.body("chair").id

    def reward(self, model, data):
        robot = self.robot
        # The pelvis terms read the current qpos, the chair and torso terms the last substep's
        # kinematics: the benchmark mixes the two (spec §9.4).
        pelvis_x, pelvis_y, pelvis_z = data.qpos[:3]
        chair_x, chair_y, _ = data.xpos[self.chair_body]
        head_z = robot.head_height(data)
        sitting = tolerance(pelvis_z, bounds=(0.68, 0.72), margin=0.2)
        on_chair = tolerance(pelvis_x - chair_x, bounds=(-0.19, 0.19), margin=0.2) * tolerance(
            pelvis_y - chair_y, margin=0.1
        )
        # head − imu is 0.42 m when the torso is vertical (both sites are on the torso link).
        sitting_posture = tolerance(head_z - robot.imu_position(data)[2], bounds=(0.35, 0.45), margin=0.3)
        upright = tolerance(
            robot.torso_upright(data), bounds=(0.95, np.inf), margin=0.9, sigmoid="linear", value_at_margin=0.0
        )
        sit_reward = (0.5 * sitting + 0.5 * on_chair) * upright * sitting_posture
        small_control = rewards.small_control(robot.actuator_force(data))
        vx, vy, _ = robot.com_velocity(data)
        dont_move = rewards.dont_move(vx, vy)
        info = {
            "small_control": small_control,
            "sit_reward": sit_reward,
            "dont_move": dont_move,
            "sitting": sitting,
            "upright": upright,
            "sitting_posture": sitting_posture,
        }
        return small_control * sit_reward * dont_move, info

    def terminated(self, model, data) -> bool:
        return bool(data.qpos[2] < 0.5)


@register_task
class SitHard(SitSimple):
    """sit_simple with a movable chair (free joint; obs 64) and the robot placed at random in front
    of it, facing a random direction.

    Reset draws pelvis x ~ U(0.2, 0.4), y ~ U(−0.15, 0.15) and a pure yaw ~ U(−1.8, 1.8) rad, in
    that order, from the env's seeded generator. Deviation: the benchmark draws them from NumPy's
    global RNG, so its `reset(seed=...)` does not reproduce them; ours does.
    """

    name = "sit_hard"
    random_score = 2.448
    chair_is_free = True

    def reset(self, model, data, rng):
        data.qpos[0] = rng.uniform(0.2, 0.4)
        data.qpos[1] = rng.uniform(-0.15, 0.15)
        yaw = rng.uniform(-1.8, 1.8)
        data.qpos[3:7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
