"""Stand still on a board balanced on a ball (spec §4.7)."""

from __future__ import annotations

import mujoco

from envs.h1 import rewards
from envs.h1.task import register_task
from envs.h1.tasks.locomotion import Stand
from envs.h1.tasks.scene import FLOOR_GEOM, add_box, contact_pairs

BOARD_HEIGHT = 0.37  # m, board centre; its top face is at 0.40
BOARD_HALF_SIZE = (0.15, 0.55, 0.03)  # 30 cm along x, 1.1 m along y
BALL_RADIUS = 0.17
DENSITY = 1000.0  # kg/m³, MuJoCo's default: board 19.8 kg, ball 20.58 kg as in the benchmark


class _Balance(Stand):
    """Stand's reward with the head bound raised by the board height. The episode ends when the
    pelvis drops below 0.8 m, the robot touches the ball, or anything but the ball touches the
    floor (a foot stepping off, or the board tipping over)."""

    stand_height = rewards.STAND_HEIGHT + BOARD_HEIGHT
    pelvis_position = (-0.1, 0.0, 1.38)  # feet on the board
    contact_terms = frozenset({"terminated"})
    ball_is_free: bool

    def add_scene(self, spec):
        board = spec.worldbody.add_body(name="stand_board", pos=(0.0, 0.0, BOARD_HEIGHT))
        board.add_freejoint(name="free_stand_board")
        add_box(board, (0.0, 0.0, 0.0), BOARD_HALF_SIZE, name="stand_board_collision", density=DENSITY,
                rgba=(0.6, 0.45, 0.3, 1.0))
        ball = spec.worldbody.add_body(name="rolling_pivot", pos=(0.0, 0.0, BALL_RADIUS))
        if self.ball_is_free:
            ball.add_freejoint(name="free_rolling_pivot")
        ball.add_geom(name="pivot_sphere_collision", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=(BALL_RADIUS, 0, 0),
                      density=DENSITY, rgba=(0.3, 0.3, 0.35, 1.0))

    def bind(self, model):
        self.board_geom = model.geom("stand_board_collision").id
        self.ball_geom = model.geom("pivot_sphere_collision").id

    def terminated(self, model, data) -> bool:
        if data.qpos[2] < 0.8:
            return True
        pairs = contact_pairs(data)  # (ncon, 2)
        has_ball = (pairs == self.ball_geom).any(axis=1)
        has_floor = (pairs == FLOOR_GEOM).any(axis=1)
        has_board = (pairs == self.board_geom).any(axis=1)
        # The ball may only touch the floor and the board; the floor may only touch the ball.
        return bool((has_ball & ~has_floor & ~has_board).any() or (has_floor & ~has_ball).any())


@register_task
class BalanceSimple(_Balance):
    """The ball is fixed to the world; only the board moves (obs 64: robot, board)."""

    name = "balance_simple"
    random_score = 9.391
    ball_is_free = False


@register_task
class BalanceHard(_Balance):
    """The ball rolls too (obs 77: robot, board, ball)."""

    name = "balance_hard"
    random_score = 9.044
    ball_is_free = True
