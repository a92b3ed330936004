"""The benchmarks' --quick modes run and print their tables; figures are not asserted (shared CPU).

Also checks the pieces a benchmark's figures rest on: the per-tap reference equals fire_conv, the FLOP
count of a Nature-CNN update, the reference replay's layout."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import fire
from agents.nature_cnn import QNetwork
from bench import dqn_speed, fire_speed
from bench.reference.cleanrl_dqn import ReplayBuffer

ROOT = Path(__file__).resolve().parents[2]


def run_quick(module: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, "--quick"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_replay_memory_quick_prints_both_buffers():
    out = run_quick("bench.replay_memory")
    assert "ours (replay/atari.py)" in out and "SB3-style (CleanRL)" in out and "KB/transition" in out


def test_h1_speed_quick_prints_overhead_and_vector_rates():
    out = run_quick("bench.h1_speed")
    assert "overhead over physics" in out and "2 envs, async" in out


@pytest.mark.slow
def test_fire_speed_quick_prints_tables():
    out = run_quick("bench.fire_speed")
    assert "Nature CNN, all convs" in out and "share of a 1M-step run" in out


@pytest.mark.slow
def test_dqn_speed_quick_prints_loop_and_roofline():
    out = run_quick("bench.dqn_speed")
    assert "roofline updates/s" in out and "end to end, RR 1" in out


@pytest.mark.slow
def test_sac_speed_quick_prints_loop_ratios():
    out = run_quick("bench.sac_speed")
    assert "end to end, UTD 1" in out


@pytest.mark.slow
def test_threads_quick_prints_every_setting_in_both_conditions():
    out = run_quick("bench.threads")
    assert "1 busy process" in out and "worst ratio to the best setting" in out
    assert all(name in out for name in (
        "1 thread", "2 threads (torch's default)", "OMP_WAIT_POLICY=passive", "auto (train.py)"))


def test_per_tap_reference_equals_batched_fire_conv():
    W = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fire_speed.per_tap_fire_conv(W), fire.fire_conv(W), rtol=1e-4, atol=1e-6)


def test_update_flops_match_the_nature_cnn_by_hand():
    # Per sample, multiply-adds: conv1 20*20*32*(4*8*8), conv2 9*9*64*(32*4*4), conv3 7*7*64*(64*3*3),
    # fc1 3136*512, fc2 512*4. Update = online fwd + bwd (2 fwd minus conv1's input gradient) + target fwd.
    macs = [20 * 20 * 32 * 256, 9 * 9 * 64 * 512, 7 * 7 * 64 * 576, 3136 * 512, 512 * 4]
    forward = 2 * 2 * sum(macs)  # batch 2, 2 FLOPs per multiply-add
    obs = torch.zeros(2, 4, 84, 84, dtype=torch.uint8)
    assert dqn_speed.forward_flops(QNetwork(4), obs) == (forward, 2 * 2 * macs[0])
    assert dqn_speed.update_flops(QNetwork(4), obs) == 4 * forward - 2 * 2 * macs[0]


def test_reference_replay_stores_whole_stacks_per_env_and_samples_tensors():
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buffer = ReplayBuffer(8, space, n_envs=4, device="cpu")
    obs = np.arange(4, dtype=np.uint8)[:, None, None, None] * np.ones((4, 4, 84, 84), np.uint8)
    buffer.add(obs, obs + 10, np.arange(4), np.ones(4), np.zeros(4))
    assert buffer.observations.shape == (2, 4, 4, 84, 84)
    sample = buffer.sample(16)
    assert sample.observations.dtype == torch.uint8 and sample.observations.shape == (16, 4, 84, 84)
    # Each sampled obs belongs with its own action and next_obs (same env row).
    torch.testing.assert_close(sample.actions.squeeze(1), sample.observations[:, 0, 0, 0].long())
    torch.testing.assert_close(sample.next_observations[:, 0, 0, 0], sample.observations[:, 0, 0, 0] + 10)


def test_h1_memory_bare_env_processes_and_import_share_print():
    result = subprocess.run([sys.executable, "-m", "bench.h1_memory", "--skip-runs"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "h1-walk env (ours)" in result.stdout and "gymnasium Humanoid-v5" in result.stdout
    share_table = result.stdout.split("What train.py imports")[1].splitlines()[3:]  # after the header rows
    cumulative = {cells[1].strip(): float(cells[3]) for cells in (row.split("|") for row in share_table)}
    assert list(cumulative)[-1] == "train" and cumulative["train"] >= cumulative["hydra"] > 0, result.stdout


def test_checkpoint_size_of_h1_env_snapshots_prints_both_formats():
    result = subprocess.run([sys.executable, "bench/checkpoint_size.py", "--env", "h1-walk-v0", "--num-envs", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "integration state" in result.stdout and "whole MjData" in result.stdout
