"""`H1Env`: one HumanoidBench H1 task as a gymnasium env (spec §1.6, §2)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np

from envs.h1.models import physics_model, render_model
from envs.h1.robot import KEYFRAME_QPOS
from envs.h1.task import TASKS
from envs.wrappers import check_action

FRAME_SKIP = 10  # physics substeps per env step: 0.02 s control period, 50 Hz
ROBOT_NQ = 26


class H1Env(gym.Env):
    """Unitree H1 (position control, no hands) doing one task.

    Action: (19,) in [-1, 1], mapped linearly onto each servo's ctrlrange (a = 0 is the middle of
    the joint range, not the standing pose). Any other shape, a non-finite or an out-of-range entry
    raises ValueError; unchecked, a (1,) action would broadcast to every servo, MuJoCo would clamp
    1.7 to 1 and, on a NaN, zero all controls and write MUJOCO_LOG.TXT, each silently.
    Observation: qpos ⊕ qvel (float64) unless the task defines its own.
    Step: 10 physics substeps, then reward and termination from the data the last substep left
    (no extra `mj_forward`, as in the benchmark). The benchmark also calls `mj_rnePostConstraint`
    after stepping; no reward reads what it computes, so we skip it.
    Reset: the initial pose plus U(-reset_noise, reset_noise) on every qpos coordinate from the
    env's seeded generator, free-joint quaternions renormalised, qvel 0; then the task's reset
    with the same generator. The benchmark draws sit_hard's and reach's placements from NumPy's
    global RNG instead; here `reset(seed=...)` makes every task reproducible.
    Model: `model` is the physics model (envs/h1/models.py: no visual geoms or meshes) and is
    shared by every env of the task in the process, so it must not be edited. Rendering:
    `render_mode="rgb_array"` renders the camera tracking the robot offscreen, from a model with
    the visual meshes built on the first frame, posed at the current qpos. Without a display,
    `import envs` selects an offscreen OpenGL backend (envs/gl.py) unless MUJOCO_GL is set or
    MuJoCo was imported first.
    Snapshots (envs/snapshot.py) hold MuJoCo's integration state (`snapshot_physics`): every
    reward and termination reads `data` after `mj_step`, which recomputes everything else from it.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 50}
    snapshot_physics: ClassVar[int] = mujoco.mjtState.mjSTATE_INTEGRATION
    validates_actions: ClassVar[bool] = True  # envs.make adds no ValidatedActions wrapper

    def __init__(self, task: str = "walk", render_mode: str | None = None, width: int = 256, height: int = 256,
                 reset_noise: float = 0.01):
        if task not in TASKS:
            raise ValueError(f"task={task!r} is unknown; allowed: {', '.join(sorted(TASKS))}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r} is unknown; allowed: None, rgb_array")
        self.task = TASKS[task]()
        self.model = physics_model(task)
        self.data = mujoco.MjData(self.model)
        self.task.attach(self.model)

        # Initial pose: the robot's keyframe at the task's pelvis position, task objects at qpos0.
        self.init_qpos = self.model.qpos0.copy()
        self.init_qpos[:ROBOT_NQ] = KEYFRAME_QPOS
        self.init_qpos[:3] = self.task.pelvis_position
        self.reset_noise = reset_noise

        low, high = self.model.actuator_ctrlrange.T  # (nu,) each
        self._ctrl_mid, self._ctrl_half_range = (high + low) / 2, (high - low) / 2
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(self.model.nu,), dtype=np.float32)
        obs_size = self.task.observation_size(self.model)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(obs_size,), dtype=np.float64)

        self.success_bar = self.task.success_bar
        self.random_score = self.task.random_score
        self.metadata = {**self.metadata, "success_bar": self.success_bar, "random_score": self.random_score,
                         # (random, success bar): the SimBa papers' normalised score
                         "normalization": (self.random_score, self.success_bar)}
        self.render_mode, self.width, self.height = render_mode, width, height
        self._renderer: mujoco.Renderer | None = None  # created on first render
        self._render_data: mujoco.MjData | None = None

    @property
    def dt(self) -> float:
        """Seconds of simulated time per env step (0.02)."""
        return self.model.opt.timestep * FRAME_SKIP

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        model, data = self.model, self.data
        mujoco.mj_resetData(model, data)
        noise = self.np_random.uniform(-self.reset_noise, self.reset_noise, size=model.nq)
        data.qpos[:] = self.init_qpos + noise
        mujoco.mj_normalizeQuat(model, data.qpos)
        self.task.reset(model, data, self.np_random)
        mujoco.mj_forward(model, data)
        return self.task.observation(model, data), {}

    def step(self, action):
        action = check_action(self.action_space, action)
        model, data = self.model, self.data
        # In place, two ufuncs: the same float64 arithmetic as mid + action * half_range, fewer calls.
        np.multiply(action, self._ctrl_half_range, out=data.ctrl)
        data.ctrl += self._ctrl_mid
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        observation = self.task.observation(model, data)
        reward, info = self.task.reward(model, data)
        terminated = self.task.terminated(model, data)
        return observation, float(reward), terminated, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            model = render_model(self.task.name, self.width, self.height)
            self._render_data = mujoco.MjData(model)
            self._renderer = mujoco.Renderer(model, height=self.height, width=self.width)
        # The render model has the physics model's bodies and joints plus visual geoms: pose it at qpos.
        model, data = self._renderer.model, self._render_data
        data.qpos[:] = self.data.qpos
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)  # the tracking camera follows the centre of mass
        mujoco.mj_camlight(model, data)
        self._renderer.update_scene(data, camera="track")
        return self._renderer.render()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
            self._render_data = None
