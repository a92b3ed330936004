"""The obstacle, sitting, balance, maze and reach H1 tasks: scenes, rewards and terminations checked
against hand-computed facts and the spec's §8 measurements (../shared/specs/humanoidbench-h1.md).

Recorded-state parity with the original benchmark lives in test_h1_parity.py; here the scenes of
the tasks with reference data are also compared geom by geom with the original's compiled model.
"""

from __future__ import annotations

import json
import pickle
from functools import cache

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from envs.h1 import H1Env, gym_id
from envs.h1.models import render_model
from envs.h1.tasks import maze as maze_module
from envs.h1.tasks.maze import CHECKPOINTS
from envs.snapshot import Checkpointable

# Keyframe pose in action units (spec §2.1): the servos then hold the initial pose.
HOLD_ACTION = np.array(
    [0, 0, -0.03351, -0.08225, -0.32374] * 2 + [0, 0, -0.80290, -0.54783, -0.35233, 0, 0.80290, 0.54783, -0.35233],
    dtype=np.float32,
)
ZERO_ACTION = np.zeros(19, dtype=np.float32)
ROBOT_BODIES = 23  # world + 20 links + 2 hands: the reference model's task bodies follow them
OBS_DIMS = {
    "sit_simple": 51, "sit_hard": 64, "balance_simple": 64, "balance_hard": 77, "stair": 51,
    "slide": 51, "hurdle": 51, "pole": 51, "maze": 51, "reach": 57,
}


@cache
def env_for(task: str) -> H1Env:
    """One noise-free env per task, shared by the tests (each test resets it)."""
    return H1Env(task, reset_noise=0.0)


def set_state(env: H1Env, qpos=None, qvel=None) -> None:
    """Overwrite the state and recompute kinematics and contacts, as a constructed test state."""
    if qpos is not None:
        env.data.qpos[:] = qpos
    if qvel is not None:
        env.data.qvel[:] = qvel
    mujoco.mj_forward(env.model, env.data)


def first_step_reward(task: str, action: np.ndarray) -> float:
    """r1 of spec §8.2: from the noise-free initial pose (sit_hard: without its random placement;
    reach: goal at (0.5, 0.5, 1))."""
    env = env_for(task)
    env.reset(seed=0)
    if task == "sit_hard":
        set_state(env, env.init_qpos)
    if task == "reach":
        env.task.goal = np.array([0.5, 0.5, 1.0])
    return env.step(action)[1]


def run_episode(env: H1Env, action: np.ndarray) -> tuple[float, int]:
    """(return, length) of a constant-action episode of at most 1000 steps."""
    total, length, terminated = 0.0, 0, False
    while length < 1000 and not terminated:
        _, reward, terminated, _, _ = env.step(action)
        total += reward
        length += 1
    return total, length


# --------------------------------------------------------------------------- spaces and layout


@pytest.mark.parametrize("task", sorted(OBS_DIMS))
def test_observation_dims_and_registration(task):
    env = env_for(task)
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (OBS_DIMS[task],) and obs.dtype == np.float64
    assert info == {}
    assert env.action_space.shape == (19,)
    assert env.model.geom(0).name == "floor"  # scene geoms come after it: "geom 0 is the floor" rules hold
    obs, reward, terminated, truncated, info = env.step(ZERO_ACTION)
    assert obs.shape == (OBS_DIMS[task],) and np.isfinite(reward) and not truncated
    assert gym_id(task) == f"h1-{task}-v0"


@pytest.mark.parametrize("task", ["sit_hard", "balance_simple", "balance_hard"])
def test_free_objects_follow_the_robot_in_qpos_and_qvel(task):
    """[robot qpos (26), object qpos (7 each), robot qvel (25), object qvel (6 each)] (spec §2.3)."""
    env = env_for(task)
    obs, _ = env.reset(seed=0)
    objects = (OBS_DIMS[task] - 51) // 13
    assert env.model.nq == 26 + 7 * objects and env.model.nv == 25 + 6 * objects
    np.testing.assert_array_equal(obs, np.concatenate((env.data.qpos, env.data.qvel)))
    start = {
        "sit_hard": [(-0.25, 0, 0)],
        "balance_simple": [(0, 0, 0.37)],
        "balance_hard": [(0, 0, 0.37), (0, 0, 0.17)],
    }
    for k, position in enumerate(start[task]):
        np.testing.assert_allclose(env.init_qpos[26 + 7 * k: 33 + 7 * k], (*position, 1, 0, 0, 0))


# --------------------------------------------------------------------------- scenes


def _world_frames(parent, pos, quat):
    """World positions (n, 3) and orientations (n, 4) of a model's bodies from their local frames."""
    world_pos, world_quat = np.zeros_like(pos), np.tile([1.0, 0, 0, 0], (len(pos), 1))
    for body in range(1, len(pos)):
        p = parent[body]
        offset = np.zeros(3)
        mujoco.mju_rotVecQuat(offset, pos[body], world_quat[p])
        world_pos[body] = world_pos[p] + offset
        mujoco.mju_mulQuat(world_quat[body], world_quat[p], quat[body])
    return world_pos, world_quat


def _reference_scene(ref) -> list[tuple]:
    """(type, half-sizes, world centre, world rotation) of the reference's colliding task geoms."""
    body_pos, body_quat = _world_frames(ref["model_body_parentid"], ref["model_body_pos"], ref["model_body_quat"])
    geoms = []
    for g, body in enumerate(ref["model_geom_bodyid"]):
        is_task = body == 0 or body >= ROBOT_BODIES
        if g == 0 or not is_task or not (ref["model_geom_contype"][g] or ref["model_geom_conaffinity"][g]):
            continue
        centre, rotation, quat = np.zeros(3), np.zeros(9), np.zeros(4)
        mujoco.mju_rotVecQuat(centre, ref["model_geom_pos"][g], body_quat[body])
        mujoco.mju_mulQuat(quat, body_quat[body], ref["model_geom_quat"][g])
        mujoco.mju_quat2Mat(rotation, quat)
        geoms.append((int(ref["model_geom_type"][g]), ref["model_geom_size"][g], body_pos[body] + centre, rotation))
    return geoms


def _our_scene(env: H1Env) -> list[tuple]:
    model, data = env.model, env.data
    set_state(env, env.init_qpos)
    is_robot = model.body_rootid[model.geom_bodyid] == model.body("pelvis").id  # (ngeom,)
    collides = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    return [
        (int(model.geom_type[g]), model.geom_size[g], data.geom_xpos[g].copy(), data.geom_xmat[g].copy())
        for g in range(1, model.ngeom)
        if collides[g] and not is_robot[g]
    ]


def _sorted(geoms):
    return sorted(geoms, key=lambda g: (g[0], *np.round(g[2], 4), *np.round(g[1], 4)))


@pytest.mark.parametrize("task", ["sit_simple", "balance_simple", "stair", "slide", "hurdle", "pole"])
def test_scene_geoms_equal_the_reference_models(task, shared_dir):
    """Every colliding task geom: same type, size, world position and orientation as the original's."""
    ref = np.load(shared_dir / "data" / "hb_reference" / f"{gym_id(task)}.npz")
    ours, theirs = _sorted(_our_scene(env_for(task))), _sorted(_reference_scene(ref))
    assert len(ours) == len(theirs)
    for (our_type, our_size, our_pos, our_rot), (type_, size, pos, rot) in zip(ours, theirs, strict=True):
        assert our_type == type_
        np.testing.assert_allclose(our_size, size, atol=1e-5)
        np.testing.assert_allclose(our_pos, pos, atol=1e-5)
        np.testing.assert_allclose(our_rot, rot, atol=1e-5)


def _inertia_tensor(principal_moments, iquat) -> np.ndarray:
    """(3, 3) R · diag(moments) · Rᵀ with R the principal axes' rotation."""
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, iquat)
    rotation = rotation.reshape(3, 3)
    return rotation @ np.diag(principal_moments) @ rotation.T


@pytest.mark.parametrize(
    ("task", "bodies"), [("sit_simple", ["chair"]), ("balance_simple", ["stand_board", "rolling_pivot"])]
)
def test_object_mass_properties_equal_the_reference(task, bodies, shared_dir):
    folder = shared_dir / "data" / "hb_reference"
    ref = np.load(folder / f"{gym_id(task)}.npz")
    names = json.loads((folder / "summary.json").read_text())["tasks"][gym_id(task)]["names"]["body"]
    model = env_for(task).model
    for name in bodies:
        ours, theirs = model.body(name), names.index(name)
        assert ours.mass[0] == pytest.approx(ref["model_body_mass"][theirs], rel=1e-6)
        # Principal axes may come out in another order: compare the inertia tensors in the body frame.
        np.testing.assert_allclose(
            _inertia_tensor(ours.inertia, ours.iquat),
            _inertia_tensor(ref["model_body_inertia"][theirs], ref["model_body_iquat"][theirs]),
            atol=1e-5,
        )
        np.testing.assert_allclose(ours.ipos, ref["model_body_ipos"][theirs], atol=1e-6)


def test_sit_hard_chair_and_balance_hard_ball_are_free_with_the_benchmark_masses():
    sit = env_for("sit_hard").model
    assert sit.body("chair").mass[0] == pytest.approx(15.748)
    assert sit.jnt_type[sit.body("chair").jntadr[0]] == mujoco.mjtJoint.mjJNT_FREE
    np.testing.assert_allclose(sit.body("chair").inertia, (1.02449, 0.92529, 0.5464), atol=1e-5)
    balance = env_for("balance_hard").model
    ball = balance.body("rolling_pivot")
    assert balance.jnt_type[ball.jntadr[0]] == mujoco.mjtJoint.mjJNT_FREE
    assert ball.mass[0] == pytest.approx(20.5795, abs=1e-4)  # 1000 kg/m³ · 4/3 π 0.17³
    np.testing.assert_allclose(ball.inertia, 0.4 * ball.mass[0] * 0.17**2)
    assert balance.body("stand_board").mass[0] == pytest.approx(1000 * 0.3 * 1.1 * 0.06)
    assert env_for("balance_simple").model.body("rolling_pivot").jntnum[0] == 0  # welded to the world


def test_maze_blocks_leave_the_corridor_through_the_checkpoints_free():
    model = env_for("maze").model
    blocks = [g for g in range(model.ngeom) if model.geom(g).name.startswith("block_collision_")]
    assert len(blocks) == 7 + 2 + 5 + 2 + 5 + 2 + 7
    np.testing.assert_allclose(model.geom("block_collision_00").size, (0.75, 0.75, 0.6))
    np.testing.assert_allclose(model.geom("block_collision_00").pos, (-1.5, 7.5, 0.6))
    block_xy = model.geom_pos[blocks, :2]  # (30, 2) world centres (static geoms of the world body)
    # Sample the corridor's centre line between consecutive checkpoints: no block within 0.75 m.
    for start, end in zip(CHECKPOINTS[:-2], CHECKPOINTS[1:-1], strict=True):
        for point in np.linspace(start, end, 25):
            assert np.abs(block_xy - point).max(axis=1).min() >= 0.75
    # The checkpoint markers are visual only: in the render model, not the physics model.
    assert not any(model.geom(g).name.startswith("intersection_") for g in range(model.ngeom))
    drawn = render_model("maze", 64, 64)
    markers = [drawn.geom(f"intersection_{c}") for c in "abcd"]
    assert all(m.contype[0] == 0 and m.conaffinity[0] == 0 for m in markers)


def test_pole_forest_and_stair_heights():
    model = env_for("pole").model
    poles = [model.geom(g) for g in range(model.ngeom) if model.geom(g).name.startswith("pole_r")]
    assert len(poles) == 21 * 4 + 20 * 3
    np.testing.assert_allclose(model.geom("pole_r1_c1").pos, (1, 2.25, 1))
    np.testing.assert_allclose(model.geom("pole_r2_c2").pos, (2, 0, 1))
    np.testing.assert_allclose(model.geom("pole_r41_c4").pos, (41, -2.25, 1))
    stair = env_for("stair").model
    tops = stair.geom_pos[:, 2] + stair.geom_size[:, 2]
    steps = stair.geom_type == mujoco.mjtGeom.mjGEOM_BOX
    assert np.isclose(tops[steps], 0.9).sum() == 4  # the four pyramid tops
    first_riser = (stair.geom_pos[:, 0] - stair.geom_size[:, 0])[steps & np.isclose(tops, 0.18)]
    np.testing.assert_allclose(sorted(first_riser), (0.5, 6.5, 12.5, 18.5))


# --------------------------------------------------------------------------- first-step rewards (§8.2)

# HumanoidBench's own scenes under MuJoCo 4.0.0: (zero action, hold-keyframe action).
R1_REFERENCE = {
    "sit_simple": (0.36401, 0.41626),
    "sit_hard": (0.35729, 0.40470),
    "balance_simple": (0.87629, 0.99099),
    "balance_hard": (0.87747, 0.99409),
    "stair": (0.16119, 0.17141),
    "slide": (0.16119, 0.17141),
    "hurdle": (0.14868, 0.16590),
    "pole": (0.53789, 0.58388),
    "maze": (100.24132, 100.26409),
    "reach": (9.99582, 9.99978),
}
# The spec's suggested tolerance, 0.005, except for the chair tasks: at the initial pose the
# heels are inside the seat block, and the contact that pushes them out depends on the foot's
# collision shape, which only approximates the benchmark's (we measure 0.002–0.009 there).
R1_TOLERANCE = {"sit_simple": 0.01, "sit_hard": 0.01}


@pytest.mark.parametrize("task", sorted(R1_REFERENCE))
def test_first_step_rewards_match_the_benchmark(task):
    zero_reference, hold_reference = R1_REFERENCE[task]
    tolerance = R1_TOLERANCE.get(task, 0.005)
    assert first_step_reward(task, ZERO_ACTION) == pytest.approx(zero_reference, abs=tolerance)
    assert first_step_reward(task, HOLD_ACTION) == pytest.approx(hold_reference, abs=tolerance)


# --------------------------------------------------------------------------- whole episodes (§8.3)


def test_sit_simple_zero_action_falls_back_onto_the_chair_and_sits():
    env = env_for("sit_simple")
    env.reset(seed=0)
    total, length = run_episode(env, ZERO_ACTION)
    assert length == 1000 and total == pytest.approx(650, abs=30)  # benchmark: 652 (3.1.6), 647 (4.0.0)
    assert 0.5 < env.data.qpos[2] < 0.8  # pelvis on the seat


@pytest.mark.parametrize(
    ("task", "expected_return", "tolerance"), [("pole", 480, 40), ("hurdle", 17, 3), ("maze", 120, 5)]
)
def test_leaning_on_the_back_wall_never_terminates(task, expected_return, tolerance):
    """A robot falling backwards is held up by the back barrier/wall: full 1000-step episodes."""
    env = env_for(task)
    env.reset(seed=0)
    total, length = run_episode(env, ZERO_ACTION)
    assert length == 1000 and total == pytest.approx(expected_return, abs=tolerance)


@pytest.mark.parametrize(("task", "expected_return", "expected_length"), [
    ("balance_simple", 34.6, 59), ("balance_hard", 24.9, 39), ("stair", 7.94, 61), ("slide", 7.94, 61),
])
def test_zero_action_episodes_end_like_the_benchmarks(task, expected_return, expected_length):
    env = env_for(task)
    env.reset(seed=0)
    total, length = run_episode(env, ZERO_ACTION)
    assert abs(length - expected_length) <= 2 and total == pytest.approx(expected_return, abs=1.5)


# --------------------------------------------------------------------------- maze stage machine


def _maze_at(xy, velocity_xy=(0.0, 0.0)):
    """The maze env with the (otherwise initial) robot moved to `xy` at a uniform velocity."""
    env = env_for("maze")
    qpos = env.init_qpos.copy()
    qpos[:2] = xy
    qvel = np.zeros(env.model.nv)
    qvel[:2] = velocity_xy
    set_state(env, qpos, qvel)
    return env


def test_maze_first_step_pays_100_and_bonuses_follow_the_checkpoints():
    env = env_for("maze")
    env.reset(seed=0)
    task, model, data = env.task, env.model, env.data
    assert (task.stage, tuple(task.direction)) == (0, (1.0, 0.0))
    _, info = task.reward(model, _maze_at((0.0, 0.0)).data)
    assert info["stage_convert_reward"] == 100 and info["success_subtasks"] == 1
    _, info = task.reward(model, data)  # still at the start: no second bonus
    assert info["stage_convert_reward"] == 0 and task.stage == 1
    _, info = task.reward(model, _maze_at((3.0, 6.0)).data)  # checkpoint 2 before 1: nothing
    assert info["stage_convert_reward"] == 0 and task.stage == 1
    _, info = task.reward(model, _maze_at((3.0, 0.3)).data)  # within 0.4 m of (3, 0)
    assert info["stage_convert_reward"] == 200 and task.stage == 2 and tuple(task.direction) == (0.0, 1.0)
    _, info = task.reward(model, _maze_at((3.0, 6.0)).data)
    assert info["stage_convert_reward"] == 300 and tuple(task.direction) == (1.0, 0.0)
    reward, info = task.reward(model, _maze_at((6.0, 6.0)).data)
    assert info["stage_convert_reward"] == 400 and task.stage == 4 and tuple(task.direction) == (0.0, 1.0)
    assert reward > 400
    _, info = task.reward(model, data)  # the final stage pays nothing more, and stays
    assert info["stage_convert_reward"] == 0 and info["success_subtasks"] == 4
    env.reset(seed=0)
    assert (task.stage, tuple(task.direction)) == (0, (1.0, 0.0))


def test_maze_move_term_follows_the_current_leg_and_is_free_at_the_end():
    env = env_for("maze")
    env.reset(seed=0)
    task, model = env.task, env.model
    # Stage 1 (first leg, east) at 2 m/s east: move = 1. Robot translated rigidly: COM velocity = qvel[:3].
    _, info = task.reward(model, _maze_at((0.0, 0.0), velocity_xy=(2.0, 0.0)).data)
    assert info["move"] == pytest.approx(1.0)
    # Half a metre per second off in y: (5 · 0.5 + 1)/6.
    _, info = task.reward(model, _maze_at((1.0, 0.0), velocity_xy=(2.0, 0.5)).data)
    assert info["move"] == pytest.approx((5 * 0.5 + 1) / 6)
    task.stage, task.direction = maze_module.FINAL_STAGE, maze_module.LEG_DIRECTIONS[3]
    _, info = task.reward(model, _maze_at((1.0, 0.0), velocity_xy=(-3.0, 0.0)).data)
    assert info["move"] == 1.0


def test_maze_proximity_and_wall_discount():
    env = env_for("maze")
    env.reset(seed=0)
    task, model = env.task, env.model
    task.stage = 1  # target checkpoint (3, 0)
    data = _maze_at((2.0, 0.0)).data
    _, info = task.reward(model, data)
    imu_distance = np.linalg.norm(data.site_xpos[model.site("imu").id, :2] - (3.0, 0.0))
    assert info["checkpoint_proximity_reward"] == pytest.approx(0.1 ** (imu_distance**2))
    assert info["wall_collision_discount"] == 1.0
    # Pelvis 0.45 m from the block south of the corridor ((0, -1.5), half-size 0.75): the body touches it.
    _, info = task.reward(model, _maze_at((0.0, -0.6)).data)
    assert info["wall_collision_discount"] == 0.1


def test_maze_state_survives_pickling_and_env_snapshots():
    env = env_for("maze")
    env.reset(seed=0)
    env.task.reward(env.model, _maze_at((0.0, 0.0)).data)
    env.task.reward(env.model, _maze_at((3.0, 0.0)).data)
    clone = pickle.loads(pickle.dumps(env.task))
    assert clone.stage == 2 and tuple(clone.direction) == (0.0, 1.0)

    # A snapshot taken at stage 0 brings the first-step bonus back.
    snapshotted = Checkpointable(gym.make("h1-maze-v0"))
    snapshotted.reset(seed=0)
    blob = snapshotted.state_blob
    first = snapshotted.step(ZERO_ACTION)
    assert first[4]["stage_convert_reward"] == 100 and snapshotted.unwrapped.task.stage == 1
    snapshotted.state_blob = blob
    assert snapshotted.unwrapped.task.stage == 0
    again = snapshotted.step(ZERO_ACTION)
    assert again[1] == first[1]
    np.testing.assert_array_equal(again[0], first[0])


# --------------------------------------------------------------------------- balance termination


def _balance(task: str, robot_xyz=None, board_xyz=None, ball_xyz=None):
    """Balance env in its initial pose with robot pelvis, board and (hard) ball moved as given."""
    env = env_for(task)
    env.reset(seed=0)
    qpos = env.init_qpos.copy()
    for start, xyz in ((0, robot_xyz), (26, board_xyz), (33, ball_xyz)):
        if xyz is not None:
            qpos[start:start + 3] = xyz
    set_state(env, qpos, np.zeros(env.model.nv))
    return env


def _contacts(env) -> set[frozenset[str]]:
    model = env.model
    return {frozenset(model.body(model.geom_bodyid[g]).name for g in pair) for pair in env.data.contact.geom}


@pytest.mark.parametrize("task", ["balance_simple", "balance_hard"])
def test_balance_initial_pose_does_not_terminate(task):
    env = _balance(task)
    assert frozenset({"stand_board", "rolling_pivot"}) in _contacts(env)  # board rests on the ball
    assert not env.task.terminated(env.model, env.data)


@pytest.mark.parametrize("task", ["balance_simple", "balance_hard"])
def test_balance_terminates_when_the_pelvis_is_low_or_a_foot_touches_the_floor(task):
    # 0.8 m pelvis rule: checked first, even with no contact at all (robot in the air, off the board).
    env = _balance(task, robot_xyz=(3.0, 0.0, 0.79))
    assert env.task.terminated(env.model, env.data)
    env = _balance(task, robot_xyz=(2.0, 0.0, 0.98))  # standing on the floor next to the board
    assert any("world" in pair for pair in _contacts(env))
    assert env.task.terminated(env.model, env.data)


def test_balance_terminates_when_the_robot_touches_the_ball():
    # The ball lifted into the robot's chest; it touches nothing else, and the feet stay on the board.
    env = _balance("balance_hard", ball_xyz=(0.15, 0.0, 1.6))
    pairs = _contacts(env)
    assert any("rolling_pivot" in pair and "stand_board" not in pair for pair in pairs)
    assert not any("world" in pair for pair in pairs)
    assert env.task.terminated(env.model, env.data)


def test_balance_board_on_the_floor_terminates_but_the_ball_on_the_floor_does_not():
    # Ball rolled away (still on the floor: allowed); board and robot lowered onto the floor.
    env = _balance("balance_hard", robot_xyz=(-0.1, 0.0, 1.04), board_xyz=(0.0, 0.0, 0.029), ball_xyz=(3.0, 0.0, 0.169))
    pairs = _contacts(env)
    assert frozenset({"world", "rolling_pivot"}) in pairs and frozenset({"world", "stand_board"}) in pairs
    assert env.task.terminated(env.model, env.data)
    env = _balance("balance_hard", ball_xyz=(0.0, 0.0, 0.169))  # initial pose, ball pressed into the floor
    assert frozenset({"world", "rolling_pivot"}) in _contacts(env)
    assert not env.task.terminated(env.model, env.data)


# --------------------------------------------------------------------------- other tasks


def _tilted(env: H1Env, pitch: float, pelvis_z: float):
    qpos = env.init_qpos.copy()
    qpos[2] = pelvis_z
    qpos[3:7] = (np.cos(pitch / 2), 0, np.sin(pitch / 2), 0)
    set_state(env, qpos, np.zeros(env.model.nv))
    return env.data


@pytest.mark.parametrize("task", ["stair", "slide"])
def test_climbing_terminates_only_when_the_torso_is_nearly_horizontal(task):
    env = env_for(task)
    assert not env.task.terminated(env.model, _tilted(env, pitch=0.0, pelvis_z=0.15))  # low but upright
    assert not env.task.terminated(env.model, _tilted(env, pitch=1.4, pelvis_z=0.98))  # u = cos 1.4 = 0.17
    assert env.task.terminated(env.model, _tilted(env, pitch=1.5, pelvis_z=0.98))  # u = 0.07


def test_climbing_standing_is_measured_from_each_foot():
    env = env_for("stair")
    data = _tilted(env, pitch=0.0, pelvis_z=2.0)  # lifted 1.02 m: head − foot unchanged
    _, info = env.task.reward(env.model, data)
    head_minus_foot = 1.680 - 0.0190  # spec §8.1 keyframe heights
    assert head_minus_foot > 1.2 and info["standing"] == pytest.approx(1.0)
    assert info["upright"] == 1.0


@pytest.mark.parametrize(("task", "robot_xy", "key"), [
    ("hurdle", (-0.4, 0.0), "wall_collision_discount"),  # backed into the rear barrier
    ("hurdle", (0.0, 4.3), "wall_collision_discount"),  # against a side barrier
    ("pole", (1.0, 0.75), "collision_discount"),  # inside pole r1 c2
])
def test_obstacle_contact_discounts_the_reward_tenfold(task, robot_xy, key):
    env = env_for(task)
    env.reset(seed=0)
    free_reward, free_info = env.task.reward(env.model, env.data)
    qpos = env.init_qpos.copy()
    qpos[:2] = robot_xy
    set_state(env, qpos, np.zeros(env.model.nv))
    reward, info = env.task.reward(env.model, env.data)
    assert free_info[key] == 1.0 and info[key] == 0.1
    assert reward == pytest.approx(0.1 * free_reward, rel=1e-3)  # same pose otherwise


def test_hurdle_touching_a_hurdle_is_not_discounted():
    env = env_for("hurdle")
    qpos = env.init_qpos.copy()
    qpos[0] = 7.0  # feet and legs straddling the first hurdle
    set_state(env, qpos)
    model = env.model
    first_hurdle = np.flatnonzero((model.geom_bodyid == 0) & np.isclose(model.geom_pos[:, 0], 7.0))
    assert len(first_hurdle) == 1
    assert (env.data.contact.geom == first_hurdle[0]).any()
    _, info = env.task.reward(env.model, env.data)
    assert info["wall_collision_discount"] == 1.0


def test_pole_reward_is_additive():
    """Half stand-tall, half move: lying still on the ground still earns 0.5 · move(0) = 1/12."""
    env = env_for("pole")
    data = _tilted(env, pitch=-np.pi / 2, pelvis_z=0.3)
    reward, info = env.task.reward(env.model, data)
    assert info["move"] == pytest.approx(1 / 6)
    assert reward == pytest.approx(0.5 * info["small_control"] * info["stand_reward"] + 0.5 / 6)


def test_sit_hard_placement_is_seeded_and_within_the_benchmark_ranges():
    env = env_for("sit_hard")
    placements = []
    for seed in range(8):
        env.reset(seed=seed)
        x, y = env.data.qpos[:2]
        w, qx, qy, qz = env.data.qpos[3:7]
        yaw = 2 * np.arctan2(qz, w)
        assert 0.2 <= x <= 0.4 and -0.15 <= y <= 0.15 and abs(yaw) <= 1.8 and qx == qy == 0
        placements.append((x, y, yaw))
    assert len(set(placements)) == 8
    env.reset(seed=3)
    assert tuple(env.data.qpos[:2]) == placements[3][:2]


def test_sit_reward_at_a_hand_computed_state():
    """Pelvis at the chair's centre at 0.70 m, upright torso, at rest: sitting = on_chair = 1."""
    env = env_for("sit_simple")
    qpos = env.init_qpos.copy()
    qpos[:3] = (-0.25, 0.0, 0.70)
    set_state(env, qpos, np.zeros(env.model.nv))
    reward, info = env.task.reward(env.model, env.data)
    assert info["sitting"] == 1.0 and info["upright"] == 1.0 and info["sitting_posture"] == 1.0
    assert info["sit_reward"] == pytest.approx(1.0) and info["dont_move"] == 1.0
    assert reward == pytest.approx(info["small_control"])
    assert not env.task.terminated(env.model, env.data)
    qpos[2] = 0.49
    set_state(env, qpos)
    assert env.task.terminated(env.model, env.data)


def test_sit_hard_reward_follows_the_moved_chair():
    env = env_for("sit_hard")
    qpos = env.init_qpos.copy()
    qpos[:3] = (1.0, 0.5, 0.70)  # pelvis at sitting height...
    set_state(env, qpos, np.zeros(env.model.nv))
    _, info = env.task.reward(env.model, env.data)
    assert info["sit_reward"] < 0.6  # ...but away from the chair: only the height term scores
    qpos[26:29] = (1.0, 0.5, 0.0)  # chair moved under the pelvis
    set_state(env, qpos)
    _, info = env.task.reward(env.model, env.data)
    assert info["sit_reward"] == pytest.approx(1.0)


def test_reach_observation_goal_and_reward():
    env = env_for("reach")
    goals = []
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        goal = env.task.goal.copy()
        assert np.all((-2, -2, 0.2) <= goal) and np.all(goal <= (2, 2, 2))
        np.testing.assert_array_equal(obs[54:], goal)
        np.testing.assert_array_equal(obs[51:54], env.data.site_xpos[env.model.site("left_hand").id])
        np.testing.assert_array_equal(obs[:51], np.concatenate((env.data.qpos, env.data.qvel)))
        goals.append(goal)
    assert not np.array_equal(*goals)
    env.reset(seed=1)
    np.testing.assert_array_equal(env.task.goal, goals[1])

    model, data, task = env.model, env.data, env.task
    hand = data.site_xpos[model.site("left_hand").id].copy()
    pelvis_up = data.xmat[model.body("pelvis").id, 8]
    for offset, bonus in ((0.0, 15.0), (0.5, 5.0), (1.5, 0.0)):
        task.goal = hand + (0.0, 0.0, offset)
        reward, info = task.reward(model, data)
        assert reward == pytest.approx(5 * pelvis_up + bonus) and info["hand_dist"] == pytest.approx(offset)
    data.qvel[6] = 10.0  # left hip yaw, 10 rad/s
    reward, info = task.reward(model, data)
    assert info["motion_penalty"] == pytest.approx(100.0) and reward == pytest.approx(5 * pelvis_up - 0.01)
    assert not task.terminated(model, data)


@pytest.mark.parametrize("task", sorted(OBS_DIMS))
def test_random_actions_keep_rewards_in_their_ranges(task):
    """Per-step reward in [0, 1] (maze: plus its one-off bonus; reach: at most 20), SC in [0.8, 1]."""
    env = env_for(task)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(40):
        _, reward, terminated, _, info = env.step(rng.uniform(-1, 1, 19).astype(np.float32))
        if task == "reach":
            assert reward <= 20.0
            continue
        bonus = info.get("stage_convert_reward", 0.0)
        assert 0.0 <= reward - bonus <= 1.0
        assert 0.8 <= info["small_control"] <= 1.0
        if terminated:
            env.reset()
