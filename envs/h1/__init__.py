"""HumanoidBench's Unitree H1 tasks (no hands, position control) rebuilt on MuJoCo Menagerie's H1.

Importing this package registers `h1-<task>-v0` with gymnasium for every task in `TASKS`
(episode limit 1000 env steps), e.g. `gymnasium.make("h1-walk-v0")`.
"""

import gymnasium as gym

import envs.h1.tasks  # noqa: F401  (registers the tasks)
from envs.h1.env import H1Env
from envs.h1.task import TASKS, Task, register_task


def gym_id(task: str) -> str:
    return f"h1-{task}-v0"


def register_envs() -> None:
    """Register every task in TASKS that gymnasium does not know yet (idempotent)."""
    for name, cls in TASKS.items():
        if gym_id(name) not in gym.registry:
            gym.register(gym_id(name), entry_point="envs.h1.env:H1Env", kwargs={"task": name},
                         max_episode_steps=cls.max_episode_steps)


register_envs()

__all__ = ["TASKS", "H1Env", "Task", "gym_id", "register_envs", "register_task"]
