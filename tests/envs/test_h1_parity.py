"""Parity with the original HumanoidBench, from states it recorded (../shared/data/hb_reference).

For every task that has both an implementation (TASKS) and reference data, rebuild each recorded
state and compare reward, reward components and termination:
* `pert_*`: perturbed states evaluated after a plain mj_forward;
* `s<seed>_replay_mixed_*`: the stale-substep convention of an env step (spec §2.2): mj_forward at
  the state before the last substep, then qpos/qvel overwritten with the post-step state.
Outputs a task lists in `contact_terms` depend on contacts with collision geometry that only
approximates the benchmark's; they may differ on at most 2 % of states. Everything else: 1e-9.
Dynamics (our robot, not the original) are compared loosely: first-step reward within 1e-3.
"""

from __future__ import annotations

import json
from functools import cache

import mujoco
import numpy as np
import pytest

from envs.h1 import TASKS, H1Env, gym_id

EXACT = 1e-9
CONTACT_MISMATCH_RATE = 0.02
# First-step reward: 1e-3, except where the first step already involves contacts between the
# foot and a task object, which the box sole resolves differently from the benchmark's mesh hull:
# in sit_simple the heels start 2 cm inside the chair seat, in balance_simple the soles stand on
# the board. Measured: 0.0041 and 0.0031 (walk, stand, run, crawl: <= 5e-4).
FIRST_STEP_TOLERANCE = {"sit_simple": 5e-3, "balance_simple": 5e-3}
ROBOT_BODIES = 23  # world + 20 links + 2 massless hands, same order in both models


@pytest.fixture(scope="module")
def reference(shared_dir):
    folder = shared_dir / "data" / "hb_reference"
    summary = json.loads((folder / "summary.json").read_text())["tasks"]

    def load(task: str):
        path = folder / f"{gym_id(task)}.npz"
        if not path.exists():
            pytest.skip(f"no reference data for {gym_id(task)} (the spec's §8 checks cover it)")
        return np.load(path), summary[gym_id(task)]

    return load


@cache
def env_for(task: str) -> H1Env:
    return H1Env(task)


def evaluate(env: H1Env, qpos, qvel, ctrl, post_qpos=None, post_qvel=None):
    """Reward, components and termination at a rebuilt state; with post_*: the mixed convention."""
    model, data = env.model, env.data
    mujoco.mj_resetData(model, data)
    data.qpos[:], data.qvel[:], data.ctrl[:] = qpos, qvel, ctrl
    mujoco.mj_forward(model, data)
    if post_qpos is not None:
        data.qpos[:], data.qvel[:] = post_qpos, post_qvel
    reward, info = env.task.reward(model, data)
    return reward, info, env.task.terminated(model, data)


def rows(ref, seeds):
    """(label, qpos, qvel, ctrl, post_qpos, post_qvel, reward, components, terminated) arrays."""
    keys = [k[len("pert_rinfo_"):] for k in ref.files if k.startswith("pert_rinfo_")]
    yield ("pert", ref["pert_qpos"], ref["pert_qvel"], ref["pert_ctrl"], None, None, ref["pert_reward"],
           {k: ref[f"pert_rinfo_{k}"] for k in keys}, ref["pert_terminated"])
    for seed in seeds:
        s = f"s{seed}"
        if f"{s}_replay_mixed_reward" not in ref.files:
            continue
        yield (f"{s}_replay_mixed", ref[f"{s}_pre_qpos"], ref[f"{s}_pre_qvel"], ref[f"{s}_ctrl"], ref[f"{s}_qpos"],
               ref[f"{s}_qvel"], ref[f"{s}_replay_mixed_reward"], {k: ref[f"{s}_info_{k}"] for k in keys},
               ref[f"{s}_replay_mixed_terminated"])


def parity_errors(task: str, ref, meta) -> dict[str, dict[str, np.ndarray]]:
    """{output: {row label: |ours - reference|}} for the reward, each component and termination."""
    env = env_for(task)
    errors: dict[str, dict[str, np.ndarray]] = {}
    for label, qpos, qvel, ctrl, post_qpos, post_qvel, ref_reward, ref_info, ref_terminated in rows(ref, meta["seeds"]):
        posts = [post_qpos, post_qvel] if post_qpos is not None else []
        results = [evaluate(env, *state) for state in zip(qpos, qvel, ctrl, *posts, strict=True)]
        assert set(results[0][1]) == set(meta["reward_info_keys"]), f"{task}: info keys differ"
        outputs = {"reward": ([r for r, _, _ in results], ref_reward)}
        outputs |= {k: ([i[k] for _, i, _ in results], ref_info[k]) for k in ref_info}
        outputs["terminated"] = ([t for _, _, t in results], ref_terminated)
        for name, (ours, theirs) in outputs.items():
            errors.setdefault(name, {})[label] = np.abs(np.array(ours, float) - theirs.astype(float))
    return errors


@pytest.mark.parametrize("task", sorted(TASKS))
def test_reward_components_and_termination_match_the_reference(task, reference):
    ref, meta = reference(task)
    contact_terms = env_for(task).task.contact_terms
    contact_dependent = set(contact_terms) | ({"reward"} if contact_terms - {"terminated"} else set())
    for name, by_label in parity_errors(task, ref, meta).items():
        if name in contact_dependent:  # rate over all recorded states of the task
            rate = np.mean(np.concatenate(list(by_label.values())) > EXACT)
            assert rate <= CONTACT_MISMATCH_RATE, f"{task} {name}: {rate:.1%} of states differ"
            continue
        for label, error in by_label.items():
            worst = int(np.argmax(error))
            assert error[worst] <= EXACT, f"{task} {label} {name}: row {worst} differs by {error[worst]:.3g}"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_reset_state_and_observation_layout_match_the_reference(task, reference):
    ref, meta = reference(task)
    env = env_for(task)
    for seed in meta["seeds"]:
        if f"s{seed}_init_obs" not in ref.files:
            continue
        obs, info = env.reset(seed=seed)
        assert info == {}
        # Same seeded generator, same noise: the initial state is the reference's to rounding.
        np.testing.assert_allclose(env.data.qpos, ref[f"s{seed}_init_qpos"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(obs, ref[f"s{seed}_init_obs"], rtol=0, atol=1e-12)
        obs, reward, *_ = env.step(ref[f"s{seed}_action"][0].astype(np.float32))
        assert obs.shape == ref[f"s{seed}_obs"].shape[1:] == env.observation_space.shape
        np.testing.assert_array_equal(obs, np.concatenate((env.data.qpos, env.data.qvel)))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_first_step_reward_from_the_reference_start(task, reference):
    ref, meta = reference(task)
    env = env_for(task)
    for seed in meta["seeds"]:
        if f"s{seed}_reward" not in ref.files:
            continue
        env.reset(seed=seed)
        _, reward, *_ = env.step(ref[f"s{seed}_action"][0].astype(np.float32))
        assert reward == pytest.approx(ref[f"s{seed}_reward"][0], abs=FIRST_STEP_TOLERANCE.get(task, 1e-3))


def _moving_bodies(parent: np.ndarray, jnt_body: np.ndarray) -> np.ndarray:
    """Bodies with a joint on their path to the world (the ones whose mass matters)."""
    moving = np.zeros(len(parent), bool)
    moving[jnt_body] = True
    for body in range(1, len(parent)):  # parents precede children
        moving[body] |= moving[parent[body]]
    return moving


@pytest.mark.parametrize("task", sorted(TASKS))
def test_model_facts_match_the_reference(task, reference):
    ref, meta = reference(task)
    model = env_for(task).model
    assert (model.nq, model.nv, model.nu) == (meta["nq"], meta["nv"], meta["nu"])
    assert model.opt.timestep == meta["timestep"]
    for field in ("gainprm", "biasprm", "ctrlrange", "forcerange", "ctrllimited", "forcelimited"):
        ours = getattr(model, f"actuator_{field}")
        np.testing.assert_array_equal(ours, ref[f"model_actuator_{field}"], err_msg=field)
    for field in ("dof_damping", "dof_armature", "dof_frictionloss", "jnt_type", "jnt_range", "jnt_qposadr"):
        np.testing.assert_array_equal(getattr(model, field), ref[f"model_{field}"], err_msg=field)
    robot = slice(0, ROBOT_BODIES)
    for field in ("body_mass", "body_inertia", "body_ipos", "body_iquat"):
        ours = getattr(model, field)[robot]
        np.testing.assert_allclose(ours, ref[f"model_{field}"][robot], rtol=0, atol=1e-12, err_msg=field)
    ours = model.body_mass[_moving_bodies(model.body_parentid, model.jnt_bodyid)].sum()
    theirs = ref["model_body_mass"][_moving_bodies(ref["model_body_parentid"], ref["model_jnt_bodyid"])].sum()
    assert ours == pytest.approx(theirs, abs=1e-6)
    for i, name in enumerate(meta["names"]["site"]):
        if name.endswith("_eye"):  # cosmetic
            continue
        site = model.site(name)
        assert site.bodyid[0] == ref["model_site_bodyid"][i] and np.allclose(site.pos, ref["model_site_pos"][i]), name


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_report_trajectory_divergence(task, reference, capsys):
    """Not a pass/fail check: our robot only approximates the original's collision geometry, and
    MuJoCo versions differ, so recorded trajectories diverge chaotically. Prints max |Δqpos|."""
    ref, meta = reference(task)
    env = env_for(task)
    for seed in meta["seeds"]:
        if f"s{seed}_qpos" not in ref.files:
            continue
        env.reset(seed=seed)
        divergence = []
        for action, qpos in zip(ref[f"s{seed}_action"], ref[f"s{seed}_qpos"], strict=True):
            env.step(action.astype(np.float32))
            divergence.append(np.abs(env.data.qpos - qpos).max())
        marks = {t: f"{divergence[t - 1]:.3g}" for t in (1, 2, 5, 10, 20, 50) if t <= len(divergence)}
        with capsys.disabled():
            print(f"\n{task} seed {seed}: max |Δqpos| after steps {marks}")
