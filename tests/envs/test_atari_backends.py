"""The gymnasium Atari backend: bit-identical to ale-py's vector env, and snapshots that replay exactly."""

import numpy as np
import pytest

from envs import supports_state
from envs.atari import make_atari_vector
from envs.atari.preprocessing import area_resize, cpp_uniform_int, seeded_mt19937

# Settings that exercise every protocol piece within a few hundred steps: short time limits (truncation
# and autoreset), no-op starts, FIRE resets, life losses, both sticky-action levels, the full action set.
PROTOCOLS = {
    "noops_truncation": ("pong", dict(noop_max=30, max_episode_frames=240)),
    "episodic_life_fire": ("breakout", dict(noop_max=30, fire_reset=True, episodic_life=True,
                                            max_episode_frames=1200)),
    "sticky_frame_full": ("ms_pacman", dict(noop_max=0, repeat_action_probability=0.25, full_action_space=True,
                                            max_episode_frames=600)),
    "sticky_agent_step": ("asterix", dict(noop_max=5, repeat_action_probability=0.25,
                                          sticky_actions_at="agent_step", max_episode_frames=600)),
}
INFO_KEYS = ("final_obs", "_final_obs", "game_over", "lives")


def rollout(env, actions):
    """Per step: obs, rewards, terminations, truncations and the contract's info arrays."""
    return [(*step[:4], *(step[4][k] for k in INFO_KEYS)) for step in map(env.step, actions)]


def assert_same_rollouts(a, b):
    names = ("obs", "rewards", "terminations", "truncations", *INFO_KEYS)
    for t, (step_a, step_b) in enumerate(zip(a, b, strict=True)):
        for name, x, y in zip(names, step_a, step_b, strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{name} differs at step {t}"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_backends_give_identical_steps(protocol):
    game, kwargs = PROTOCOLS[protocol]
    native = make_atari_vector(game, 2, 0, **kwargs)
    python = make_atari_vector(game, 2, 0, backend="gymnasium", **kwargs)
    obs_native, info_native = native.reset(seed=11)
    obs_python, info_python = python.reset(seed=11)
    np.testing.assert_array_equal(obs_native, obs_python)
    np.testing.assert_array_equal(info_native["lives"], info_python["lives"])
    actions = np.random.default_rng(0).integers(0, native.single_action_space.n, (320, 2))
    steps = rollout(native, actions)
    assert_same_rollouts(steps, rollout(python, actions))
    assert sum(step[6].sum() for step in steps) >= 2  # games ended (and were reset) along the way


@pytest.mark.parametrize("sticky_actions_at", ["frame", "agent_step"])  # ALE's RNG / this wrapper's RNG
def test_snapshot_then_restore_replays_bit_exactly_also_in_a_fresh_env(sticky_actions_at):
    kwargs = dict(noop_max=30, fire_reset=True, episodic_life=True, repeat_action_probability=0.25,
                  sticky_actions_at=sticky_actions_at, max_episode_frames=400)
    env = make_atari_vector("breakout", 2, 0, backend="gymnasium", **kwargs)
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    rollout(env, rng.integers(0, 4, (60, 2)))
    blobs = env.get_attr("state_blob")
    actions = rng.integers(0, 4, (150, 2))
    reference = rollout(env, actions)
    assert sum(step[6].sum() for step in reference) >= 2  # games ended, hence resets, after the snapshot

    env.set_attr("state_blob", list(blobs))
    assert_same_rollouts(reference, rollout(env, actions))
    fresh = make_atari_vector("breakout", 2, 0, backend="gymnasium", **kwargs)
    fresh.reset(seed=123)  # a different history: everything must come from the blobs
    fresh.set_attr("state_blob", list(blobs))
    assert_same_rollouts(reference, rollout(fresh, actions))


def test_only_the_gymnasium_backend_supports_checkpoints():
    assert supports_state(make_atari_vector("pong", 1, 0, backend="gymnasium"))
    native = make_atari_vector("pong", 1, 0)
    assert not supports_state(native)
    with pytest.raises(AttributeError, match="backend=gymnasium"):
        native.set_attr("state_blob", [b""])


def test_area_resize_hand_computed():
    # 4 -> 2: plain 2x2 means; 5 -> 2: each output covers 2.5 pixels, the middle one split in half.
    frame = np.array([[0, 2, 4, 6], [2, 4, 6, 8], [10, 10, 20, 20], [30, 30, 40, 41]], dtype=np.uint8)
    np.testing.assert_array_equal(area_resize(frame, 2, 2), [[2, 6], [20, 30]])  # 30.25 rounds to 30
    row = np.array([[10, 20, 30, 40, 50]], dtype=np.uint8)
    # (10 + 20 + 0.5 * 30) / 2.5 = 18, (0.5 * 30 + 40 + 50) / 2.5 = 42
    np.testing.assert_array_equal(area_resize(np.repeat(row, 2, axis=0), 1, 2), [[18, 42]])


def test_noop_rng_is_cpp_mt19937():
    # The C++ standard fixes these: std::mt19937's first output for its default seed 5489, and its
    # 10000th output (N4659 [rand.predef]).
    generator = seeded_mt19937(5489)
    assert generator.random_raw() == 3499211612
    assert generator.random_raw(9999)[-1] == 4123659995
    draws = [cpp_uniform_int(seeded_mt19937(seed), 30) for seed in range(200)]
    assert set(draws) == set(range(30))  # uniform over 0..n-1 (Lemire: high 32 bits of x * n)
    assert draws[0] == (2357136044 * 30) >> 32  # std::mt19937(0)'s first output is 2357136044


def test_bad_backend_is_named():
    with pytest.raises(ValueError, match="backend="):
        make_atari_vector("pong", 1, 0, backend="python")
    with pytest.raises(ValueError, match="vectorization="):
        make_atari_vector("pong", 1, 0, backend="gymnasium", vectorization="threads")
