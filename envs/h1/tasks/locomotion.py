"""Walk, stand, run and crawl on open ground (spec §4.1–4.4)."""

from __future__ import annotations

import mujoco
import numpy as np

from envs.h1 import rewards
from envs.h1.task import Task, register_task
from envs.h1.tolerance import tolerance


class _FallTerminates(Task):
    """Episodes end when the pelvis drops below `fall_height` (the robot has fallen)."""

    fall_height = 0.2  # m (pole: 0.5)

    def terminated(self, model, data) -> bool:
        return bool(data.qpos[2] < self.fall_height)


class _Locomotion(_FallTerminates):
    """Stand tall and upright while moving the centre of mass along +x at `speed` m/s."""

    speed: float
    success_bar = 700.0
    upright_threshold = 0.9  # torso u from which `upright` is 1 (hurdle loosens it)

    def standing(self, data) -> float:
        return rewards.standing(self.robot.head_height(data))

    def terms(self, data) -> dict[str, float]:
        """The walk family's reward terms, also its info dict."""
        robot = self.robot
        standing = self.standing(data)
        upright = rewards.upright(robot.torso_upright(data), self.upright_threshold)
        return {
            "stand_reward": standing * upright,
            "small_control": rewards.small_control(robot.actuator_force(data)),
            "move": rewards.move(robot.com_velocity(data)[0], self.speed),
            "standing": standing,
            "upright": upright,
        }

    def reward(self, model, data):
        info = self.terms(data)
        return info["small_control"] * info["stand_reward"] * info["move"], info


@register_task
class Walk(_Locomotion):
    name = "walk"
    speed = 1.0
    random_score = 2.377


@register_task
class Run(_Locomotion):
    name = "run"
    speed = 5.0
    random_score = 2.02


@register_task
class Stand(_FallTerminates):
    name = "stand"
    success_bar = 800.0
    random_score = 10.545
    stand_height = rewards.STAND_HEIGHT  # head height from which `standing` is 1 (balance raises it)

    def reward(self, model, data):
        robot = self.robot
        standing = rewards.standing(robot.head_height(data), self.stand_height)
        upright = rewards.upright(robot.torso_upright(data))
        small_control = rewards.small_control(robot.actuator_force(data))
        vx, vy, _ = robot.com_velocity(data)
        dont_move = rewards.dont_move(vx, vy)
        stand_reward = standing * upright
        info = {
            "small_control": small_control,
            "stand_reward": stand_reward,
            "dont_move": dont_move,
            "standing": standing,
            "upright": upright,
        }
        return small_control * stand_reward * dont_move, info


@register_task
class Crawl(Task):
    """Move along +x at 1 m/s with head and chest 0.6–1.0 m high and the pelvis pitched nose-down,
    towards (and through) a 1.15 m high tunnel. Never terminates."""

    name = "crawl"
    success_bar = 700.0
    random_score = 272.658
    # Tunnel body origin and its boxes (centre, half-sizes): two side walls and a ceiling slab.
    TUNNEL_POS = (2.2, 0.0, 0.0)
    TUNNEL_BOXES = (
        ((8.0, -1.35, 0.775), (8.0, 0.2, 0.775)),
        ((8.0, 1.35, 0.775), (8.0, 0.2, 0.775)),
        ((8.0, 0.0, 1.35), (8.0, 1.15, 0.2)),
    )
    CRAWL_HEIGHT_BAND = (0.6, 1.0)  # m, for both head and imu
    TARGET_PELVIS_QUAT = np.array([0.75, 0.0, 0.65, 0.0])  # (w, x, y, z): pitched ~82° nose-down

    def add_scene(self, spec):
        tunnel = spec.worldbody.add_body(name="tunnel", pos=self.TUNNEL_POS)
        for centre, half_size in self.TUNNEL_BOXES:
            tunnel.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, pos=centre, size=half_size, rgba=(0.6, 0.5, 0.4, 1))

    def reward(self, model, data):
        robot = self.robot
        small_control = rewards.small_control(robot.actuator_force(data))
        move = rewards.move(robot.com_velocity(data)[0], 1.0)
        imu = robot.imu_position(data)
        crawling_head = tolerance(robot.head_height(data), bounds=self.CRAWL_HEIGHT_BAND, margin=1.0)
        crawling = tolerance(imu[2], bounds=self.CRAWL_HEIGHT_BAND, margin=1.0)
        pose_error = np.linalg.norm(robot.pelvis_quat(data) - self.TARGET_PELVIS_QUAT)
        pose = tolerance(pose_error, margin=1.0)
        in_tunnel = tolerance(imu[1], bounds=(-1.0, 1.0))
        reward = (0.1 * small_control + 0.25 * min(crawling, crawling_head) + 0.4 * move + 0.25 * pose) * in_tunnel
        info = {
            "crawling": crawling,
            "crawling_head": crawling_head,
            "small_control": small_control,
            "move": move,
            "in_tunnel": in_tunnel,
        }
        return reward, info
