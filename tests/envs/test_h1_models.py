"""H1 models and snapshots: the physics model without visual geoms integrates bit-identically to the full
model, models are shared per task, snapshots are a few KB and resume every task exactly, and
`gym.make` users render headless (envs/gl.py)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from envs.gl import offscreen_backend
from envs.h1 import TASKS, H1Env, gym_id
from envs.h1.models import physics_model, render_model
from envs.h1.robot import build_robot
from envs.snapshot import Checkpointable

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_BYTES_BOUND = 16_000  # per env; the whole MjData was ~54 MB


def random_actions(steps: int, seed: int) -> np.ndarray:
    """Uniform over the whole action box: the robot falls, collides and (in most tasks) terminates."""
    return np.random.default_rng(seed).uniform(-1, 1, (steps, 19)).astype(np.float32)


def full_model(task: str) -> mujoco.MjModel:
    """The model as built before visual geoms were discarded: visual and collision geoms, all meshes."""
    spec = build_robot()
    TASKS[task]().add_scene(spec)
    return spec.compile()


@pytest.mark.parametrize("task", ["walk", "balance_hard", "sit_hard", "hurdle", "maze"])
def test_physics_model_integrates_bit_identically_to_the_full_model(task):
    physics, full = physics_model(task), full_model(task)
    assert physics.ngeom < full.ngeom and physics.nmeshvert < full.nmeshvert
    assert (physics.nq, physics.nv, physics.nu, physics.nbody) == (full.nq, full.nv, full.nu, full.nbody)
    np.testing.assert_array_equal(physics.body_mass, full.body_mass)
    np.testing.assert_array_equal(physics.body_inertia, full.body_inertia)
    start = H1Env(task)
    start.reset(seed=3)
    trajectories = []
    for model in (physics, full):
        data = mujoco.MjData(model)
        data.qpos[:] = start.data.qpos
        steps = []
        for ctrl in random_actions(150, seed=1):
            data.ctrl[:] = start._ctrl_mid + ctrl * start._ctrl_half_range
            mujoco.mj_step(model, data, nstep=10)
            steps.append(np.concatenate((data.qpos, data.qvel, data.sensordata, data.actuator_force, [data.ncon])))
        trajectories.append(np.array(steps))
    assert trajectories[0][:, -1].max() > 0  # contacts happened
    np.testing.assert_array_equal(trajectories[0], trajectories[1])


def test_envs_of_a_task_share_one_model():
    train, evaluation, other = H1Env("run"), H1Env("run"), H1Env("crawl")
    assert train.model is evaluation.model and train.data is not evaluation.data
    assert other.model is not train.model
    assert render_model("run", 64, 48) is render_model("run", 64, 48)
    assert render_model("run", 64, 48).ngeom > train.model.ngeom


def test_a_closed_envs_physics_model_is_reused_by_the_next_env_of_its_task():
    # train.py checks the config with one env, closes it, then builds the run's: one compile, not two.
    import gc
    import weakref

    first = H1Env("stand")
    model = weakref.ref(first.model)
    first.close()
    del first
    gc.collect()
    assert model() is not None and H1Env("stand").model is model()


def test_compiling_leaves_no_decoded_meshes_in_mujocos_asset_cache():
    cache = mujoco.mj_getCache()
    full_model("walk")
    assert mujoco.mj_getCacheSize(cache) > 10e6  # what a compile leaves behind by default
    capacity = mujoco.mj_getCacheCapacity(cache)
    render_model("walk", 61, 47)  # an offscreen size no other test uses: compiled here
    assert mujoco.mj_getCacheSize(cache) == 0 and mujoco.mj_getCacheCapacity(cache) == capacity


@pytest.mark.parametrize("task", sorted(TASKS))
def test_snapshot_restored_into_a_fresh_env_continues_exactly(task):
    """Snapshot -> restore into another env with its own history -> continue == uninterrupted: observations,
    rewards, terminations, truncations and infos, across episode ends (the time limit is shortened)."""
    actions = random_actions(90, seed=2)
    env = Checkpointable(gym.make(gym_id(task), max_episode_steps=70))
    env.reset(seed=0)
    for action in actions[:30]:
        if any(env.step(action)[2:4]):
            env.reset()
    blob = env.state_blob
    assert len(blob) < SNAPSHOT_BYTES_BOUND

    def continue_from(env):
        steps = []
        for action in actions[30:]:
            step = env.step(action)
            steps.append(step)
            if step[2] or step[3]:
                steps.append(env.reset())
        return steps

    uninterrupted = continue_from(env)
    fresh = Checkpointable(gym.make(gym_id(task), max_episode_steps=70))
    fresh.reset(seed=123)
    fresh.step(actions[-1])
    fresh.state_blob = blob
    resumed = continue_from(fresh)
    assert len(resumed) == len(uninterrupted)
    for ours, theirs in zip(resumed, uninterrupted, strict=True):
        assert pickle.dumps(ours) == pickle.dumps(theirs)  # bitwise, arrays and info dicts included


def test_snapshot_holds_mujoco_integration_state_not_the_whole_mjdata():
    env = Checkpointable(gym.make("h1-walk-v0"))
    env.reset(seed=0)
    saved = pickle.loads(env.state_blob)
    model = env.unwrapped.model
    assert saved["mujoco"]["data"].shape == (mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION),)


def test_checkpoints_from_before_resume_exactly():
    """Runs checkpointed before this change saved the whole MjData of the full model: they resume bit for bit."""
    actions = random_actions(40, seed=4)
    env = Checkpointable(gym.make("h1-balance_hard-v0"))
    env.reset(seed=0)
    for action in actions[:20]:
        env.step(action)
    saved = pickle.loads(env.state_blob)
    full = full_model("balance_hard")
    whole = mujoco.MjData(full)
    mujoco.mj_setState(full, whole, saved["mujoco"]["data"], mujoco.mjtState.mjSTATE_INTEGRATION)
    saved["mujoco"]["data"] = whole
    uninterrupted = [env.step(action) for action in actions[20:]]
    fresh = Checkpointable(gym.make("h1-balance_hard-v0"))
    fresh.reset(seed=9)
    fresh.state_blob = pickle.dumps(saved)
    assert pickle.dumps([fresh.step(action) for action in actions[20:]]) == pickle.dumps(uninterrupted)


def test_rendering_after_a_snapshot_restore_shows_the_restored_pose():
    if offscreen_backend() is None and "DISPLAY" not in os.environ:
        pytest.skip("no OpenGL library (EGL or OSMesa) for offscreen rendering")
    env = Checkpointable(gym.make("h1-walk-v0", render_mode="rgb_array", width=64, height=48))
    env.reset(seed=0)
    try:
        start = env.render()
    except mujoco.FatalError as error:
        pytest.skip(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')} cannot render here: {error}")
    blob = env.state_blob
    for action in random_actions(40, seed=0):
        env.step(action)
    assert not np.array_equal(env.render(), start)
    env.state_blob = blob
    np.testing.assert_array_equal(env.render(), start)
    env.close()


def test_check_env_passes_headless_for_gym_make_users():
    """A user's script that imports envs (no MUJOCO_GL, no DISPLAY) passes gymnasium's env checker, render
    included; reach has its own observation."""
    if offscreen_backend() is None:
        pytest.skip("no OpenGL library (EGL or OSMesa) found: gym.make users cannot render headless here")
    script = (
        "import gymnasium as gym, envs, os\n"
        "from gymnasium.utils.env_checker import check_env\n"
        "print('MUJOCO_GL', os.environ['MUJOCO_GL'])\n"
        "env = gym.make('h1-walk-v0', render_mode='rgb_array', width=64, height=48)\n"
        "check_env(env.unwrapped, skip_render_check=False)\n"
        "env.reset(seed=0)\n"
        "assert env.render().shape == (48, 64, 3)\n"
        "for task in ('walk', 'reach'):\n"
        "    check_env(gym.make(f'h1-{task}-v0'))\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0 and ("OpenGL" in result.stderr or "EGL" in result.stderr):
        pytest.skip(f"the {offscreen_backend()} library is present but cannot render here: "
                    f"{result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    assert f"MUJOCO_GL {offscreen_backend()}" in result.stdout
