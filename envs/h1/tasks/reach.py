"""Touch a random point in space with the left hand while staying upright (spec §4.13)."""

from __future__ import annotations

import numpy as np

from envs.h1.task import Task, register_task

GOAL_LOW = np.array([-2.0, -2.0, 0.2])  # m, world frame
GOAL_HIGH = np.array([2.0, 2.0, 2.0])


@register_task
class Reach(Task):
    """Per step: 5·(pelvis z-axis z-component) − 1e-4·|qvel|² + 5 within 1 m of the goal + 10 more
    within 5 cm (up to 20 per step). Never terminates.

    Observation (57): qpos (26), qvel (25), left-hand position (3), goal (3). After a step the hand
    position is the last substep's, as in the benchmark (spec §2.2).

    Reset draws the goal ~ U([−2, 2] × [−2, 2] × [0.2, 2]) from the env's seeded generator.
    Deviation: the benchmark uses NumPy's global RNG, so its `reset(seed=...)` does not reproduce
    the goal; ours does.
    """

    name = "reach"
    success_bar = 12000.0
    random_score = 260.302

    def __init__(self):
        self.goal = np.zeros(3)

    def reset(self, model, data, rng):
        self.goal = rng.uniform(GOAL_LOW, GOAL_HIGH)

    def _left_hand(self, data) -> np.ndarray:
        return data.site_xpos[self.robot.left_hand_site]

    def reward(self, model, data):
        hand_dist = float(np.linalg.norm(self._left_hand(data) - self.goal))
        # xmat[pelvis, 8]: the benchmark reads body 1, the pelvis, not the torso.
        healthy_reward = 5.0 * float(data.xmat[self.robot.pelvis_body, 8])
        motion_penalty = float(np.sum(np.square(data.qvel)))
        reward_close = 5.0 if hand_dist < 1.0 else 0.0
        reward_success = 10.0 if hand_dist < 0.05 else 0.0
        info = {
            "hand_dist": hand_dist,
            "healthy_reward": healthy_reward,
            "motion_penalty": motion_penalty,
            "reward_close": reward_close,
            "reward_success": reward_success,
        }
        return healthy_reward - 1e-4 * motion_penalty + reward_close + reward_success, info

    def observation(self, model, data):
        # The scene has no objects: qpos and qvel are the robot's (26, 25).
        return np.concatenate((data.qpos, data.qvel, self._left_hand(data), self.goal))

    def observation_size(self, model) -> int:
        return model.nq + model.nv + 6
