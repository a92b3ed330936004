"""H1Env: static facts, first steps and passive episodes (spec §8), registration, configs, vector
envs, snapshots and rendering."""

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
from omegaconf import OmegaConf

from envs.h1 import TASKS, H1Env, gym_id
from envs.h1.robot import KEYFRAME_QPOS, PELVIS_HEIGHT
from envs.make import make_vector
from envs.snapshot import Checkpointable
from loop.config import compose as compose_config

ROOT = Path(__file__).resolve().parents[2]
SPEC_TASKS = ("walk", "stand", "run", "crawl", "sit_simple", "sit_hard", "balance_simple", "balance_hard",
              "stair", "slide", "hurdle", "pole", "maze", "reach")
OBS_DIMS = {"sit_hard": 64, "balance_simple": 64, "balance_hard": 77, "reach": 57}  # others: 51


def hold_action(env: H1Env) -> np.ndarray:
    """The keyframe joint angles in action units (spec §2.1)."""
    return ((KEYFRAME_QPOS[7:] - env._ctrl_mid) / env._ctrl_half_range).astype(np.float32)


def rollout(env: H1Env, action: np.ndarray, max_steps: int = 1000) -> tuple[list[float], list[dict]]:
    rewards, infos = [], []
    for _ in range(max_steps):
        _, reward, terminated, _, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        if terminated:
            break
    return rewards, infos


@pytest.fixture(scope="module")
def walk():
    return H1Env("walk", reset_noise=0.0)


def test_static_model_facts(walk):
    model, data = walk.model, walk.data
    assert (model.nq, model.nv, model.nu, model.nsensordata) == (26, 25, 19, 14)
    assert model.opt.timestep == 0.002 and walk.dt == pytest.approx(0.02)
    assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert model.geom(0).name == "floor" and model.geom_type[0] == mujoco.mjtGeom.mjGEOM_PLANE
    walk.reset(seed=0)
    np.testing.assert_array_equal(data.qpos, KEYFRAME_QPOS)
    assert data.qpos[2] == PELVIS_HEIGHT
    assert data.site("head").xpos[2] == pytest.approx(1.680, abs=1e-4)
    assert data.body("torso_link").xmat[8] == pytest.approx(1.0)
    assert data.site("left_foot").xpos[2] == pytest.approx(0.0190, abs=1e-4)
    assert data.site("right_foot").xpos[2] == pytest.approx(0.0190, abs=1e-4)
    assert data.site("imu").xpos[2] == pytest.approx(1.2576, abs=1e-4)
    np.testing.assert_allclose(data.subtree_com[0], (0.02806, 0.00097, 0.94659), atol=1e-5)
    assert model.body_subtreemass[1] == pytest.approx(51.649896, abs=1e-6)


def test_action_space_and_mapping(walk):
    assert walk.action_space == gym.spaces.Box(-1.0, 1.0, (19,), np.float32)
    walk.reset(seed=0)
    walk.step(np.zeros(19, np.float32))
    midpoints = [0, 0, -0.305, 0.895, -0.175] * 2 + [0, 0, 1.385, 1.575, 0.68, 0, -1.385, -1.575, 0.68]
    np.testing.assert_allclose(walk.data.ctrl, midpoints, atol=1e-12)
    keyframe_in_action_units = [0, 0, -0.03351, -0.08225, -0.32374] * 2 + [0, 0, -0.80290, -0.54783, -0.35233,
                                                                           0, 0.80290, 0.54783, -0.35233]
    np.testing.assert_allclose(hold_action(walk), keyframe_in_action_units, atol=1e-5)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_observation_space_per_task(task):
    env = gym.make(gym_id(task), reset_noise=0.0)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == obs.shape == (OBS_DIMS.get(task, 51),)
    assert obs.dtype == np.float64 and env.spec.max_episode_steps == 1000
    assert env.unwrapped.success_bar == env.unwrapped.metadata["success_bar"] == TASKS[task].success_bar
    assert env.unwrapped.random_score == TASKS[task].random_score


# Spec §8.2, MuJoCo 4.0.0 columns (HB's own model); tolerance 0.005 for a Menagerie-based rebuild.
FIRST_STEP_REWARDS = {
    "walk": (0.16119, 0.17141),
    "stand": (0.87317, 0.98712),
    "run": (0.14868, 0.16590),
    "crawl": (0.32912, 0.33646),
}


@pytest.mark.parametrize("task", sorted(FIRST_STEP_REWARDS))
def test_first_step_rewards_zero_and_hold_action(task):
    env = H1Env(task, reset_noise=0.0)
    for action, expected in zip((np.zeros(19, np.float32), hold_action(env)), FIRST_STEP_REWARDS[task], strict=True):
        env.reset(seed=0)
        _, reward, *_ = env.step(action)
        assert reward == pytest.approx(expected, abs=0.005)


def test_walk_hold_breakdown(walk):
    walk.reset(seed=0)
    *_, info = walk.step(hold_action(walk))
    assert info["standing"] == 1.0 and info["upright"] == 1.0
    assert info["small_control"] == pytest.approx(0.98733, abs=0.005)
    assert info["move"] == pytest.approx(0.17368, abs=0.005)


# Spec §8.3 (HB, MuJoCo 4.0.0 where given): passive episodes, no reset noise. (return, length)
PASSIVE_EPISODES = {
    ("walk", "zero"): (5.92, 62), ("walk", "hold"): (9.24, 79),
    ("stand", "zero"): (32.07, 62), ("stand", "hold"): (51.99, 79),
    ("run", "zero"): (5.79, 62), ("run", "hold"): (9.14, 79),
    ("crawl", "zero"): (291.74, 1000), ("crawl", "hold"): (292.18, 1000),
}


@pytest.mark.parametrize(("task", "action"), sorted(PASSIVE_EPISODES))
def test_the_h1_cannot_stand_passively(task, action):
    """Holding the keyframe (or the range midpoints), the robot tips over within ~1.6 s; crawl never ends."""
    env = H1Env(task, reset_noise=0.0)
    env.reset(seed=0)
    rewards, infos = rollout(env, hold_action(env) if action == "hold" else np.zeros(19, np.float32))
    expected_return, expected_length = PASSIVE_EPISODES[task, action]
    assert len(rewards) == pytest.approx(expected_length, abs=2)
    assert sum(rewards) == pytest.approx(expected_return, rel=0.03)
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert all(0.8 <= i["small_control"] <= 1.0 for i in infos)


@pytest.mark.parametrize("task", ["walk", "stand", "run", "crawl"])
def test_random_actions_keep_rewards_and_components_in_range(task):
    env = H1Env(task)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(60):
        _, reward, terminated, _, info = env.step(rng.uniform(-1, 1, 19).astype(np.float32))
        assert 0.0 <= reward <= 1.0
        assert 0.8 <= info["small_control"] <= 1.0
        if "move" in info:
            assert 1 / 6 - 1e-12 <= info["move"] <= 1.0
        if terminated:
            env.reset()


def test_seeded_resets_are_reproducible_and_noisy():
    env = H1Env("walk")
    first, _ = env.reset(seed=7)
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    np.testing.assert_array_equal(first, again)
    noise = first[:26] - KEYFRAME_QPOS
    assert 0 < np.abs(noise).max() <= 0.01 + 1e-12 and not np.array_equal(first, other)
    assert np.linalg.norm(first[3:7]) == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_array_equal(first[26:], 0.0)


def test_time_limit_truncates_at_1000_steps():
    env = gym.make("h1-crawl-v0")
    env.reset(seed=0)
    action = np.zeros(19, np.float32)
    for step in range(1, 1001):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated and truncated == (step == 1000)


def test_bad_task_and_render_mode_are_named():
    with pytest.raises(ValueError, match="task='jump'.*allowed: .*walk"):
        H1Env("jump")
    with pytest.raises(ValueError, match="render_mode"):
        H1Env("walk", render_mode="human")


def test_snapshot_restores_mid_episode_exactly():
    env = Checkpointable(gym.make("h1-walk-v0"))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.2, 0.2, (6, 19)).astype(np.float32)
    for action in actions[:3]:
        env.step(action)
    blob = env.state_blob
    first = [env.step(a)[:2] for a in actions[3:]]
    env.state_blob = blob
    second = [env.step(a)[:2] for a in actions[3:]]
    for (obs_a, r_a), (obs_b, r_b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert r_a == r_b
    pickle.dumps(env.unwrapped.task)


def compose_env(name: str):
    """The `env` section of `python train.py env=<name>` (shared defaults included)."""
    return OmegaConf.create(compose_config(f"env={name}")["env"])


def test_every_spec_task_has_a_config():
    for task in SPEC_TASKS:
        cfg = compose_env(f"h1-{task}")
        assert cfg.id == gym_id(task) and cfg.name == f"h1-{task}" and cfg.suite == "gymnasium"


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_make_vector_builds_h1_envs(vectorization):
    cfg = compose_env("h1-walk")
    cfg.vectorization = vectorization
    envs = make_vector(cfg, num_envs=2)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 51)
        obs, rewards, *_ = envs.step(np.zeros((2, 19), np.float32))
        assert rewards.shape == (2,) and np.all(rewards > 0)
    finally:
        envs.close()


def test_rgb_array_rendering_headless():
    """Rendering needs an OpenGL backend chosen before MuJoCo is imported, hence a subprocess."""
    script = ("from envs.h1 import H1Env; e = H1Env('walk', render_mode='rgb_array', width=64, height=48);"
              "e.reset(seed=0); im = e.render(); assert im.shape == (48, 64, 3) and im.std() > 0; e.close()")
    backend = os.environ.get("MUJOCO_GL", "egl")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "MUJOCO_GL": backend},
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and ("OpenGL" in result.stderr or "EGL" in result.stderr):
        pytest.skip(f"no working MUJOCO_GL={backend} backend here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr


def test_normalized_score_uses_the_success_bar_and_random_score():
    from envs import make_vector, normalized_score
    from envs.h1 import TASKS

    walk = TASKS["walk"]
    h1 = make_vector({"suite": "gymnasium", "id": "h1-walk-v0", "action_repeat": 2}, num_envs=1)
    pendulum = make_vector({"suite": "gymnasium", "id": "Pendulum-v1"}, num_envs=1)
    assert normalized_score(h1.metadata, walk.random_score) == 0.0
    assert normalized_score(h1.metadata, walk.success_bar) == 1.0
    assert normalized_score(pendulum.metadata, -200.0) is None
    h1.close()
    pendulum.close()
