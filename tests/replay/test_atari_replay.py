"""Frame-efficient Atari replay: stacks rebuilt at sample time must equal the stacks the env produced."""

import numpy as np
import pytest
import torch

import replay.atari
import replay.base
from envs.atari import make_atari_vector
from replay.atari import AtariReplay, pack_array, unpack_into

STACK, H = 4, 84


def rollout(num_envs: int, steps: int, seed: int = 0, frame_stack_start: str = "zeros"):
    """A real ALE rollout with life losses (terminations) and time limits (truncations).

    Returns the per-step arrays the loop would hand to the replay: next_obs is final_obs at episode ends.
    """
    env = make_atari_vector(
        "breakout", num_envs, seed, episodic_life=True, fire_reset=True, noop_max=10, max_episode_frames=240,
        frame_stack_start=frame_stack_start,
    )
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    steps_out = []
    for _ in range(steps):
        actions = rng.integers(0, env.single_action_space.n, num_envs)
        new_obs, rewards, terminations, truncations, info = env.step(actions)
        next_obs = np.where(info["_final_obs"][:, None, None, None], info["final_obs"], new_obs)
        steps_out.append((obs, actions, rewards, next_obs, terminations, truncations))
        obs = new_obs
    env.close()
    return steps_out


@pytest.fixture(scope="module")
def ale_steps():
    return rollout(num_envs=3, steps=200)


def fill(replay: AtariReplay, steps) -> None:
    for step in steps:
        replay.add(*step)


def sampleable(replay: AtariReplay):
    """Every sampleable (env, absolute transition index) pair."""
    lo, hi = replay._sampleable_range()
    env = np.concatenate([np.full(h - l, e) for e, (l, h) in enumerate(zip(lo, hi, strict=True))])
    first = np.concatenate([np.arange(l, h) for l, h in zip(lo, hi, strict=True)])
    return env, first


@pytest.mark.parametrize("capacity", [3 * 400, 3 * 60])  # no wrap-around / ring overwritten ~3 times
def test_stacks_equal_the_env_observations(ale_steps, capacity):
    episode_ends = sum(int((s[4] | s[5]).sum()) for s in ale_steps)
    truncations = sum(int(s[5].sum()) for s in ale_steps)
    assert episode_ends >= 10 and truncations >= 3, "the rollout must cross many episode boundaries"
    replay = AtariReplay(capacity, 3, gamma=0.9)
    fill(replay, ale_steps)
    env, first = sampleable(replay)
    assert len(replay) == len(env) > 0
    batch = replay.batch_at(env, first)
    for i, (e, t) in enumerate(zip(env, first, strict=True)):
        obs, actions, rewards, next_obs, terminations, truncations = ale_steps[t]
        np.testing.assert_array_equal(batch.obs[i].numpy(), obs[e], err_msg=f"obs env {e} step {t}")
        np.testing.assert_array_equal(batch.next_obs[i].numpy(), next_obs[e], err_msg=f"next {e} {t}")
        assert batch.actions[i].item() == actions[e]
        assert batch.rewards[i].item() == rewards[e]
        assert batch.discounts[i].item() == pytest.approx(0.9 * (1 - terminations[e]))


def test_repeated_first_frame_stacks_equal_the_env_observations():
    steps = rollout(num_envs=2, steps=150, frame_stack_start="repeat")
    first_obs = steps[0][0]
    assert all((first_obs[:, i] == first_obs[:, -1]).all() for i in range(STACK))  # the paper's FrameStack
    assert first_obs[:, -1].any()
    replay = AtariReplay(2 * 200, 2, gamma=0.9, frame_stack_start="repeat")
    fill(replay, steps)
    env, first = sampleable(replay)
    batch = replay.batch_at(env, first)
    starts = 0
    for i, (e, t) in enumerate(zip(env, first, strict=True)):
        obs, next_obs = steps[t][0][e], steps[t][3][e]
        np.testing.assert_array_equal(batch.obs[i].numpy(), obs, err_msg=f"obs env {e} step {t}")
        np.testing.assert_array_equal(batch.next_obs[i].numpy(), next_obs, err_msg=f"next {e} {t}")
        starts += bool((obs[0] == obs[1]).all() and obs[0].any())
    assert starts >= 4, "the rollout must start several (life-)episodes"


def test_sample_shapes_dtypes_and_only_sampleable(ale_steps):
    replay = AtariReplay(3 * 60, 3)
    fill(replay, ale_steps)
    batch = replay.sample(32)
    assert batch.obs.shape == batch.next_obs.shape == (32, STACK, H, H)
    assert batch.obs.dtype == batch.next_obs.dtype == torch.uint8
    assert batch.actions.dtype == torch.int64 and batch.actions.shape == (32,)
    assert batch.rewards.dtype == batch.discounts.dtype == torch.float32
    # The newest running transition's successor frame is not stored yet: never sampled.
    lo, hi = replay._sampleable_range()
    assert (hi <= replay.transitions_written).all() and (hi - lo <= 60).all()


def synthetic_step(frame_ids, next_ids, actions, rewards, terminations, truncations, history):
    """Stacks of frames filled with their ids; `history` = frames before the newest in this episode."""

    def stack(ids, hist):
        out = np.zeros((len(ids), STACK, H, H), np.uint8)
        for e, (i, k) in enumerate(zip(ids, hist, strict=True)):
            for j in range(min(k, STACK - 1) + 1):
                out[e, STACK - 1 - j] = i - j
        return out

    return (
        stack(frame_ids, history),
        np.asarray(actions),
        np.asarray(rewards, np.float32),
        stack(next_ids, [h + 1 for h in history]),
        np.asarray(terminations, bool),
        np.asarray(truncations, bool),
    )


def test_boundaries_zero_the_previous_episode_and_truncation_keeps_final_frame():
    # One env, frames numbered 1.. ; episode A = frames 1,2,3 then truncation with final frame 4;
    # episode B starts at frame 10.
    replay = AtariReplay(16, 1, gamma=0.5)
    replay.add(*synthetic_step([1], [2], [0], [1.0], [False], [False], [0]))
    replay.add(*synthetic_step([2], [3], [1], [1.0], [False], [False], [1]))
    replay.add(*synthetic_step([3], [4], [2], [1.0], [False], [True], [2]))
    replay.add(*synthetic_step([10], [11], [3], [1.0], [False], [False], [0]))
    replay.add(*synthetic_step([11], [12], [3], [1.0], [True], [False], [1]))
    batch = replay.batch_at(np.zeros(5, int), np.arange(5))
    newest = batch.obs[:, :, 0, 0].numpy()
    np.testing.assert_array_equal(
        newest, [[0, 0, 0, 1], [0, 0, 1, 2], [0, 1, 2, 3], [0, 0, 0, 10], [0, 0, 10, 11]]
    )
    np.testing.assert_array_equal(
        batch.next_obs[:, :, 0, 0].numpy(),
        [[0, 0, 1, 2], [0, 1, 2, 3], [1, 2, 3, 4], [0, 0, 10, 11], [0, 10, 11, 12]],
    )
    np.testing.assert_allclose(batch.discounts.numpy(), [0.5, 0.5, 0.5, 0.5, 0.0])  # truncation bootstraps


def test_n_step_returns_and_discounts_hand_computed():
    gamma = 0.5
    replay = AtariReplay(32, 1, gamma=gamma, n_step=3)
    # episode A: rewards 1, 2, 4, 8 then terminated; episode B: rewards 16, 32, 64 (running)
    rewards = [1, 2, 4, 8, 16, 32, 64]
    ends = [False, False, False, True, False, False, False]
    ids = [1, 2, 3, 4, 20, 21, 22]
    history = [0, 1, 2, 3, 0, 1, 2]
    for t in range(7):
        replay.add(
            *synthetic_step([ids[t]], [ids[t] + 1], [t], [rewards[t]], [ends[t]], [False], [history[t]])
        )
    # Sampleable: episode A (t=0..3). In B, t=4's 3-step window ends at t=6, whose successor frame arrives
    # only with the next add.
    assert len(replay) == 4
    replay.add(*synthetic_step([23], [24], [7], [128], [False], [False], [3]))
    assert len(replay) == 5
    batch = replay.batch_at(np.zeros(5, int), np.arange(5))
    expected_returns = [
        1 + 0.5 * 2 + 0.25 * 4,
        2 + 0.5 * 4 + 0.25 * 8,
        4 + 0.5 * 8,
        8,
        16 + 0.5 * 32 + 0.25 * 64,
    ]
    np.testing.assert_allclose(batch.rewards.numpy(), expected_returns)
    np.testing.assert_allclose(batch.discounts.numpy(), [0.125, 0.0, 0.0, 0.0, 0.125])
    # n-step successor: the stack after the last summed step
    np.testing.assert_array_equal(batch.next_obs[:, -1, 0, 0].numpy(), [4, 5, 5, 5, 23])
    np.testing.assert_array_equal(batch.next_obs[0, :, 0, 0].numpy(), [1, 2, 3, 4])


def test_state_dict_round_trip_resumes_identically(ale_steps):
    replay = AtariReplay(3 * 60, 3, n_step=2)
    fill(replay, ale_steps[:120])
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in replay.state_dict().items()}
    restored = AtariReplay(3 * 60, 3, n_step=2, seed=123)
    restored.load_state_dict(state)
    for step in ale_steps[120:]:
        replay.add(*step)
        restored.add(*step)
    a, b = replay.sample(64), restored.sample(64)
    for name in ("obs", "actions", "rewards", "next_obs", "discounts"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_memory_per_transition_at_one_million():
    bytes_per_transition = AtariReplay.nbytes_for(4, 250_000, 250_000 + 5_000 + 4, (84, 84)) / 1e6
    assert 84 * 84 < bytes_per_transition <= 7_300


def test_memory_check_refuses_impossible_capacity():
    with pytest.raises(MemoryError, match="capacity"):
        AtariReplay(4 * 10**9, 4)  # 28 TB: had it allocated first, this would have died, not raised


def test_memory_check_names_needed_and_available_bytes(monkeypatch):
    monkeypatch.setattr(replay.base, "available_memory_bytes", lambda: 2**30)
    needed = AtariReplay.nbytes_for(4, 250_000, 250_000 + 5_000 + 4, (84, 84))
    message = rf"capacity=1000000\) needs {needed / 2**30:.2f} GiB, only 1.00 GiB available"
    with pytest.raises(MemoryError, match=message):
        AtariReplay(1_000_000, 4)
    assert len(AtariReplay(400, 4).frames) == 4  # small enough: built


def test_checkpoint_state_is_compressed_and_restores_every_array(ale_steps):
    original = AtariReplay(3 * 60, 3, seed=5)
    fill(original, ale_steps[:150])
    state = original.state_dict()
    packed_bytes = sum(c.numel() for c in state["frames"]["zstd_chunks"])
    assert packed_bytes * 10 < original.frames.nbytes  # real frames: well over 10x smaller
    restored = AtariReplay(3 * 60, 3, seed=0)
    restored.load_state_dict(state)
    for name in AtariReplay._ARRAYS + AtariReplay._COUNTERS:
        np.testing.assert_array_equal(getattr(restored, name), getattr(original, name), err_msg=name)
    with pytest.raises(ValueError, match="'frames'"):
        AtariReplay(3 * 80, 3).load_state_dict(state)


def test_pack_array_spans_chunks_of_any_dtype(monkeypatch):
    monkeypatch.setattr(replay.atari, "CHUNK_BYTES", 800)
    array = np.arange(800 // 8 * 2 + 3, dtype=np.int64).reshape(-1, 1)  # 2 full chunks and a bit
    packed = pack_array(array)
    assert len(packed["zstd_chunks"]) == 3
    out = np.zeros_like(array)
    unpack_into(packed, out, "x")
    np.testing.assert_array_equal(out, array)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="capacity"):
        AtariReplay(10, 4)
    with pytest.raises(ValueError, match="n_step"):
        AtariReplay(8, 4, n_step=0)


def test_a_branch_ends_the_stored_episodes_at_the_checkpoint_observation():
    # Checkpoint taken mid-episode (frames 17, 18, 19 stored, the loop holding the observation ending in 20);
    # the branched run's envs start a new episode at frame 200.
    stored = AtariReplay(16, 1, gamma=0.5)
    for i, frame in enumerate([17, 18, 19]):
        stored.add(*synthetic_step([frame], [frame + 1], [0], [1.0], [False], [False], [i]))
    checkpoint_obs = synthetic_step([20], [21], [0], [0.0], [False], [False], [3])[0]

    branched = AtariReplay(16, 1, gamma=0.5)
    branched.load_state_dict(stored.state_dict())
    branched.end_episodes(checkpoint_obs)
    branched.add(*synthetic_step([200], [201], [1], [1.0], [False], [False], [0]))
    branched.add(*synthetic_step([201], [202], [1], [1.0], [False], [False], [1]))

    batch = branched.batch_at(np.zeros(4, int), np.arange(4))
    np.testing.assert_array_equal(batch.obs[:, :, 0, 0].numpy(),
                                  [[0, 0, 0, 17], [0, 0, 17, 18], [0, 17, 18, 19], [0, 0, 0, 200]])
    # The last stored transition leads to the checkpoint's observation and bootstraps (a truncation).
    np.testing.assert_array_equal(batch.next_obs[2, :, 0, 0].numpy(), [17, 18, 19, 20])
    np.testing.assert_allclose(batch.discounts.numpy()[2], 0.5)
    np.testing.assert_array_equal(batch.next_obs[3, :, 0, 0].numpy(), [0, 0, 200, 201])
