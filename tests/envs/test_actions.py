"""Every env refuses actions outside its action space with one clear error: wrong shape, non-finite,
out of range, non-integer; before the env sees them (no clipping, broadcasting, wrapping or hanging)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from envs.atari import make_atari_vector
from envs.h1 import H1Env
from envs.make import make_vector
from envs.wrappers import check_action

ROOT = Path(__file__).resolve().parents[2]
BOX = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)


@pytest.mark.parametrize(("action", "message"), [
    (np.zeros(1), r"shape \(1,\), expected \(3,\)"),
    (np.zeros((2, 3)), r"shape \(2, 3\), expected \(3,\)"),
    ([0.0, np.nan, 0.0], r"non-finite value\(s\) \[nan\] at index \[1\]"),
    ([0.0, 0.0, -np.inf], r"non-finite value\(s\) \[-inf\] at index \[2\]"),
    ([2.5, 0.0, -2.0], r"out of range at index \[0\]: 2.5 not in \[-2.0, 2.0\]"),
])
def test_box_actions_outside_the_space_are_refused_naming_the_entries(action, message):
    with pytest.raises(ValueError, match=r"invalid action for Box\(-2.0, 2.0, \(3,\), float32\): " + message):
        check_action(BOX, action)


def test_box_members_pass_through_unchanged_including_the_bounds():
    for action in ([2.0, -2.0, 0.0], np.float64([1.5, 0.0, -0.1])):
        np.testing.assert_array_equal(check_action(BOX, action), action)
    unbounded = gym.spaces.Box(-np.inf, np.inf, (2,))
    check_action(unbounded, [1e300, -1e300])
    with pytest.raises(ValueError, match="non-finite"):
        check_action(unbounded, [np.inf, 0.0])


@pytest.mark.parametrize(("space", "action", "message"), [
    (gym.spaces.Discrete(4), -1, r"-1 not in \[0, 3\]"),
    (gym.spaces.Discrete(4), 4, r"4 not in \[0, 3\]"),
    (gym.spaces.Discrete(4), 1.7, r"dtype float64, expected integers"),
    (gym.spaces.MultiDiscrete([6, 6]), [0, 6], r"index \[1\]: 6 not in \[0, 5\]"),
    (gym.spaces.MultiDiscrete([6, 6]), np.array([1.0, 2.0]), r"dtype float64, expected integers"),
    (gym.spaces.MultiDiscrete([6, 6]), [1], r"shape \(1,\), expected \(2,\)"),
])
def test_discrete_actions_outside_the_space_are_refused(space, action, message):
    with pytest.raises(ValueError, match=message):
        check_action(space, action)
    check_action(space, np.zeros(space.shape, np.int64))


@pytest.mark.parametrize(("action", "message"), [
    (np.zeros(1, np.float32), r"shape \(1,\)"),
    (np.full(19, np.nan, np.float32), "non-finite"),
    (np.full(19, 1.0001, np.float32), "out of range"),
])
def test_h1_refuses_bad_actions_before_mujoco_sees_them(action, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory on a NaN control
    env = H1Env("walk")
    env.reset(seed=0)
    ctrl = env.data.ctrl.copy()
    with pytest.raises(ValueError, match=message):
        env.step(action)
    np.testing.assert_array_equal(env.data.ctrl, ctrl)
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    env.step(np.ones(19, np.float32))  # the bounds themselves are actions


def test_gymnasium_tasks_from_make_vector_refuse_bad_actions():
    envs = make_vector({"suite": "gymnasium", "id": "Pendulum-v1"}, num_envs=2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"out of range at index \[0\]: 2.5 not in \[-2.0, 2.0\]"):
        envs.step(np.array([[0.0], [2.5]], np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        envs.step(np.array([[np.nan], [0.0]], np.float32))
    envs.step(np.array([[2.0], [-2.0]], np.float32))


@pytest.mark.parametrize("action", [-1, 6, 1.7])
def test_atari_gymnasium_backend_refuses_bad_actions(action):
    envs = make_atari_vector("pong", 2, 0, backend="gymnasium")
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action for MultiDiscrete"):
        envs.step(np.array([0, action]))
    envs.step(np.array([0, 5]))
    envs.close()


def test_atari_vector_backend_refuses_bad_actions_instead_of_hanging():
    """ale-py's C++ vector env waits forever on an out-of-range action: run in a subprocess with a timeout."""
    script = ("import numpy as np\nfrom envs.atari import make_atari_vector\n"
              "envs = make_atari_vector('pong', 2, 0)\nenvs.reset(seed=0)\n"
              "for action in (-1, 6, 1.7):\n"
              "    try:\n        envs.step(np.array([0, action]))\n"
              "    except ValueError as error:\n        print(error)\n"
              "envs.step(np.array([0, 5]))\nprint('done')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "done" and len(lines) == 4
    assert "-1 not in [0, 5]" in lines[0] and "6 not in [0, 5]" in lines[1] and "expected integers" in lines[2]
