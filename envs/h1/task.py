"""What an H1 task supplies to `H1Env`: its scene objects, reward, termination and observation.

A task is a plain, picklable Python object (the env snapshot pickles it with the env). The env
owns the physics; a task reads `mjData` as the last of the env step's 10 substeps left it, without
a fresh `mj_forward` (spec §2.2): poses, sensors and actuator forces are then one substep (2 ms)
older than `qpos`/`qvel`, which is what the benchmark's rewards see.
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np


class RobotReadout:
    """The robot quantities the rewards read, by cached ids (plain ints: picklable, no name lookups
    per step). Values refer to the state at the start of the last substep, except `pelvis_position`."""

    def __init__(self, model: mujoco.MjModel):
        site, body = mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtObj.mjOBJ_BODY
        self.head_site = mujoco.mj_name2id(model, site, "head")
        self.imu_site = mujoco.mj_name2id(model, site, "imu")
        self.left_foot_site = mujoco.mj_name2id(model, site, "left_foot")
        self.right_foot_site = mujoco.mj_name2id(model, site, "right_foot")
        self.left_hand_site = mujoco.mj_name2id(model, site, "left_hand")
        self.right_hand_site = mujoco.mj_name2id(model, site, "right_hand")
        self.torso_body = mujoco.mj_name2id(model, body, "torso_link")
        self.pelvis_body = mujoco.mj_name2id(model, body, "pelvis")
        sensor = model.sensor("pelvis_subtreelinvel")
        self._com_velocity = slice(int(sensor.adr[0]), int(sensor.adr[0]) + 3)
        self.num_actuators = 19  # the robot's actuators come first

    def head_height(self, data: mujoco.MjData) -> float:
        return float(data.site_xpos[self.head_site, 2])

    def torso_upright(self, data: mujoco.MjData) -> float:
        """u = z-component of the torso's z-axis (1 upright, 0 horizontal)."""
        return float(data.xmat[self.torso_body, 8])

    def com_velocity(self, data: mujoco.MjData) -> np.ndarray:
        """(3,) world-frame linear velocity of the whole robot's centre of mass."""
        return data.sensordata[self._com_velocity]

    def actuator_force(self, data: mujoco.MjData) -> np.ndarray:
        """(19,) servo torques, N·m."""
        return data.actuator_force[: self.num_actuators]

    def imu_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xpos[self.imu_site]

    def pelvis_quat(self, data: mujoco.MjData) -> np.ndarray:
        """(4,) pelvis orientation (w, x, y, z) from the last substep's kinematics (`xquat`)."""
        return data.xquat[self.pelvis_body]

    @staticmethod
    def pelvis_position(data: mujoco.MjData) -> np.ndarray:
        """(3,) current pelvis position (qpos, post-step): what terminations read."""
        return data.qpos[:3]


class Task:
    """Base of the 14 tasks. Subclasses set the class attributes and override `reward`, and where
    they differ, `add_scene`, `bind`, `reset`, `terminated` and `observation`."""

    name: ClassVar[str] = ""
    success_bar: ClassVar[float]  # the benchmark's "solved" episode return
    random_score: ClassVar[float]  # uniform-random policy's return, for normalised scores (spec §6.4)
    max_episode_steps: ClassVar[int] = 1000
    pelvis_position: ClassVar[tuple[float, float, float]] = (0.0, 0.0, 0.98)  # in the initial pose
    # Outputs that depend on contacts with the robot's collision geometry, which only approximates
    # the benchmark's (info keys, plus "terminated" if termination does). Parity tests allow these
    # to differ from the reference on a few states; every other output must match to 1e-9.
    contact_terms: ClassVar[frozenset[str]] = frozenset()

    robot: RobotReadout

    def attach(self, model: mujoco.MjModel) -> None:
        """Called by the env once the model is compiled: reads the robot's ids, then `bind`."""
        self.robot = RobotReadout(model)
        self.bind(model)

    def add_scene(self, spec: mujoco.MjSpec) -> None:
        """Add the task's bodies and geoms to the robot spec. Free bodies go at their initial pose,
        so the compiled model's qpos0 holds their initial qpos."""

    def bind(self, model: mujoco.MjModel) -> None:
        """Cache the ids of the task's own bodies/geoms/sites."""

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        """Task-specific reset after the generic reset noise (e.g. random placement); reset task state."""

    def reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> tuple[float, dict[str, float]]:
        """The step reward and its named components (they go to `info`)."""
        raise NotImplementedError

    def terminated(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return False

    def observation(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """qpos ⊕ qvel, float64 (robot then objects in each)."""
        return np.concatenate((data.qpos, data.qvel))

    def observation_size(self, model: mujoco.MjModel) -> int:
        return model.nq + model.nv


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task constructible as `H1Env(task=cls.name)` and `h1-<name>-v0`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}.name is empty; set the task's short name (e.g. 'walk')")
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"task name {cls.name!r} is already registered by {TASKS[cls.name].__name__}")
    TASKS[cls.name] = cls
    return cls
