"""Follow a walled corridor through four checkpoints, with a bonus at each (spec §4.12)."""

from __future__ import annotations

import mujoco
import numpy as np

from envs.h1 import rewards
from envs.h1.task import Task, register_task
from envs.h1.tasks.scene import add_box, geom_mask, touches
from envs.h1.tolerance import tolerance

WALL_DISCOUNT = 0.1  # reward factor while any maze block is touched
SPEED = 2.0  # m/s along the current leg's direction
CHECKPOINT_RADIUS = 0.4  # m, pelvis distance that counts as reaching a checkpoint
STAGE_BONUS = 100.0  # reaching checkpoint k pays k · 100 once
# (x, y) of the checkpoints: the start, then the corridor's corners and its end. The last one is
# repeated so that the final stage (4) still has a target for the proximity term.
CHECKPOINTS = np.array([(0.0, 0.0), (3.0, 0.0), (3.0, 6.0), (6.0, 6.0), (6.0, 6.0)])
CHECKPOINTS.flags.writeable = False
FINAL_STAGE = len(CHECKPOINTS) - 1
# Direction of the leg that starts when checkpoint k is reached: east, north, east, north.
LEG_DIRECTIONS = np.array([(1.0, 0.0), (0.0, 1.0), (1.0, 0.0), (0.0, 1.0)])
LEG_DIRECTIONS.flags.writeable = False

BLOCK_SIZE, BLOCK_HEIGHT = 1.5, 1.2  # m
# Occupied cells of the 7 × 7 grid, per row (row 0 is the northmost, at y = 7.5).
OCCUPIED_COLUMNS = (
    range(7), (0, 6), (0, 1, 2, 4, 6), (0, 6), (0, 2, 4, 5, 6), (0, 6), range(7),
)


def block_centre(row: int, col: int) -> tuple[float, float, float]:
    """World centre of grid cell (row, col); the start (0, 0) lies in cell (5, 1)."""
    return (-1.5 + BLOCK_SIZE * col, 7.5 - BLOCK_SIZE * row, BLOCK_HEIGHT / 2)


@register_task
class Maze(Task):
    """Stand tall, move at 2 m/s along the current leg and stay near the next checkpoint; 0.1 ×
    while touching a wall. Stage k counts the checkpoints reached; reaching checkpoint k pays a
    one-off bonus of 100·k. The start is checkpoint 0, so the first step always pays 100.
    Ends when the pelvis drops below 0.2 m.

    State: `stage` (0…4) and `direction` ((2,) unit vector of the current leg), reset by `reset`.
    """

    name = "maze"
    success_bar = 1200.0
    random_score = 106.441
    contact_terms = frozenset({"wall_collision_discount"})

    def __init__(self):
        self.stage = 0
        self.direction = LEG_DIRECTIONS[0]

    def add_scene(self, spec):
        for row, columns in enumerate(OCCUPIED_COLUMNS):
            for col in columns:
                half = (BLOCK_SIZE / 2, BLOCK_SIZE / 2, BLOCK_HEIGHT / 2)
                add_box(spec.worldbody, block_centre(row, col), half, name=f"block_collision_{row}{col}",
                        rgba=(0.55, 0.55, 0.6, 1.0))
        for letter, (x, y) in zip("abcd", CHECKPOINTS[:FINAL_STAGE], strict=True):
            # Markers only: they take part in no contact.
            spec.worldbody.add_geom(name=f"intersection_{letter}", type=mujoco.mjtGeom.mjGEOM_SPHERE,
                                    size=(0.1, 0, 0), pos=(x, y, 0.0), contype=0, conaffinity=0,
                                    rgba=(1.0, 0.2, 0.2, 0.6))

    def bind(self, model):
        block_ids = (g for g in range(model.ngeom) if model.geom(g).name.startswith("block_collision_"))
        self.block_mask = geom_mask(model, block_ids)

    def reset(self, model, data, rng):
        self.stage = 0
        self.direction = LEG_DIRECTIONS[0]

    def advance_stage(self, pelvis_xy: np.ndarray) -> float:
        """Move to the next stage if the pelvis is within 0.4 m of the current checkpoint; returns
        the bonus earned (100 · new stage, or 0)."""
        if np.linalg.norm(pelvis_xy - CHECKPOINTS[self.stage]) >= CHECKPOINT_RADIUS:
            return 0.0
        if self.stage == FINAL_STAGE:
            return 0.0
        self.direction = LEG_DIRECTIONS[self.stage]
        self.stage += 1
        return STAGE_BONUS * self.stage

    def reward(self, model, data):
        robot = self.robot
        stage_convert_reward = self.advance_stage(data.xpos[robot.pelvis_body, :2])
        stand_reward = rewards.standing(robot.head_height(data)) * rewards.upright(robot.torso_upright(data))
        small_control = rewards.small_control(robot.actuator_force(data))
        wall_collision_discount = WALL_DISCOUNT if touches(data, self.block_mask) else 1.0
        if self.stage == FINAL_STAGE:
            move_raw = 1.0
        else:
            velocity_error = robot.com_velocity(data)[:2] - SPEED * self.direction
            move_raw = np.prod(tolerance(velocity_error, margin=1.0, sigmoid="linear", value_at_margin=0.0))
        move = (5.0 * move_raw + 1.0) / 6.0
        distance = np.linalg.norm(CHECKPOINTS[self.stage] - robot.imu_position(data)[:2])
        checkpoint_proximity_reward = tolerance(distance, margin=1.0)
        reward = (
            0.2 * stand_reward * small_control + 0.4 * move + 0.4 * checkpoint_proximity_reward
        ) * wall_collision_discount + stage_convert_reward
        info = {
            "stand_reward": stand_reward,
            "small_control": small_control,
            "move": move,
            "wall_collision_discount": wall_collision_discount,
            "stage_convert_reward": stage_convert_reward,
            "checkpoint_proximity_reward": checkpoint_proximity_reward,
            "success_subtasks": float(self.stage),
        }
        return float(reward), info

    def terminated(self, model, data) -> bool:
        return bool(data.qpos[2] < 0.2)
