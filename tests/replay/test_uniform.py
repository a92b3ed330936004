"""Uniform replay: what goes in comes out, discounts, ring overwrite, uniform sampling, exact state round trip."""

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import stats

from replay import make_replay
from replay.uniform import UniformReplay


def make(capacity=10, num_envs=2, obs_dtype=np.float64, seed=0, **kw):
    return UniformReplay(capacity, obs_shape=(3,), obs_dtype=obs_dtype, action_shape=(2,), action_dtype=np.float32,
                         num_envs=num_envs, gamma=0.9, seed=seed, **kw)


def add_step(replay, t, num_envs=2, terminated=(False, False), truncated=(False, False)):
    """Transition ids t*num_envs + env, written into obs[:, 0], reward, action[:, 0], next_obs[:, 0] (+0.5)."""
    ids = t * num_envs + np.arange(num_envs, dtype=np.float64)
    obs = np.stack([ids, np.zeros(num_envs), np.ones(num_envs)], axis=1)
    actions = np.stack([ids, -ids], axis=1).astype(np.float32)
    replay.add(obs, actions, ids, obs + 0.5, np.array(terminated), np.array(truncated))


def test_sampled_transitions_are_stored_ones_with_discounts_from_termination_only():
    replay = make()
    add_step(replay, 0, terminated=(True, False), truncated=(False, True))
    add_step(replay, 1)
    batch = replay.batch_at(np.arange(4))
    assert batch.obs.dtype == batch.next_obs.dtype == batch.actions.dtype == torch.float32
    assert batch.obs.shape == (4, 3) and batch.actions.shape == (4, 2) and batch.rewards.shape == (4,)
    ids = torch.arange(4, dtype=torch.float32)
    assert torch.equal(batch.obs[:, 0], ids) and torch.equal(batch.rewards, ids)
    assert torch.equal(batch.next_obs[:, 0], ids + 0.5) and torch.equal(batch.actions[:, 1], -ids)
    # terminated -> 0; truncated bootstraps from the true final obs -> gamma
    assert torch.allclose(batch.discounts, torch.tensor([0.0, 0.9, 0.9, 0.9]))
    assert len(replay) == 4


def test_ring_keeps_the_newest_capacity_transitions():
    replay = make(capacity=5, num_envs=2)
    for t in range(4):  # 8 transitions into 5 slots
        add_step(replay, t)
    assert len(replay) == 5
    stored = sorted(replay.batch_at(np.arange(5)).obs[:, 0].tolist())
    assert stored == [3.0, 4.0, 5.0, 6.0, 7.0]


def test_sampling_is_uniform_over_stored_transitions():
    replay = make(capacity=40, num_envs=2, seed=3)
    for t in range(25):  # wraps: 50 transitions written, 40 kept
        add_step(replay, t)
    counts = np.zeros(50)
    for _ in range(200):
        ids = replay.sample(200).obs[:, 0].long().numpy()
        np.add.at(counts, ids, 1)
    assert counts[:10].sum() == 0  # overwritten
    assert stats.chisquare(counts[10:]).pvalue > 1e-3


def test_state_round_trip_is_exact_through_torch_save():
    replay = make(capacity=6, seed=1)
    for t in range(4):  # wrapped
        add_step(replay, t, terminated=(t == 2, False))
    buffer = io.BytesIO()
    torch.save(replay.state_dict(), buffer)
    buffer.seek(0)
    restored = make(capacity=6, seed=99)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    for t in (9, 10):  # same writes and same draws afterwards
        add_step(replay, t)
        add_step(restored, t)
        x, y = replay.sample(16), restored.sample(16)
        for field in ("obs", "actions", "rewards", "next_obs", "discounts"):
            assert torch.equal(getattr(x, field), getattr(y, field)), field
    assert (replay.pos, len(replay)) == (restored.pos, len(restored))


def test_partial_state_holds_only_filled_slots_and_a_wrong_capacity_is_refused():
    replay = make(capacity=100)
    add_step(replay, 0)
    assert replay.state_dict()["obs"].shape == (2, 3)
    with pytest.raises(ValueError, match="capacity 100, not 50"):
        make(capacity=50).load_state_dict(replay.state_dict())


def test_memory_check_names_the_sizes():
    with pytest.raises(MemoryError, match=r"needs .* GiB, only .* GiB available; lower replay.capacity"):
        UniformReplay(10**13, (3,), np.float32, (1,), np.float32, num_envs=1, gamma=0.99)


# glibc clears every page of a calloc'd block it serves from the heap when M_PERTURB is set; with a high
# M_MMAP_THRESHOLD that is what np.zeros gets for replay-sized arrays (train.py hit the unset-perturb variant of
# it: a heap reused after its config check cleared 8 MiB of an empty h1-walk replay).
HEAP_SERVED = """
import ctypes, numpy as np
from replay.atari import AtariReplay
from replay.uniform import UniformReplay
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
libc = ctypes.CDLL(None)
assert libc.mallopt(-3, 2**30) and libc.mallopt(-6, 0xAA)  # M_MMAP_THRESHOLD 1 GiB, M_PERTURB
before = rss()
uniform = UniformReplay(1_000_000, (6,), np.float32, (2,), np.float32, num_envs=1, gamma=0.99)
atari = AtariReplay(capacity=20_000, frame_stack=4, frame_shape=(84, 84), num_envs=1, gamma=0.99)
uniform.add(*(np.ones((1, *s), np.float32) for s in [(6,), (2,), (), (6,)]), np.zeros(1, bool), np.zeros(1, bool))
print(rss() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc/self/status")
def test_empty_replays_take_no_memory_whatever_the_heap_does():
    """Replay arrays are lazily mapped zeros: a 1M-transition uniform replay (48 MB) and a 20k-frame Atari
    replay (~170 MB) add under 4 MiB of RSS, also where the allocator would serve and clear them itself."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(HEAP_SERVED)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], check=True)
    assert int(result.stdout) < 4 * 2**20


def test_make_replay_picks_uniform_for_vector_observations():
    obs_space = gym.spaces.Box(-1, 1, (3,), np.float64)
    action_space = gym.spaces.Box(-2, 2, (1,), np.float32)
    replay = make_replay({"kind": "auto", "capacity": 8}, obs_space, action_space, num_envs=1, gamma=0.99,
                         device=torch.device("cpu"), seed=0)
    assert isinstance(replay, UniformReplay) and replay.obs.dtype == np.float32
