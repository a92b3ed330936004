"""Reference for bench/dqn_speed.py: a single-file DQN written the way CleanRL's `dqn_atari.py` is.

Its structure follows CleanRL (read at github.com/vwxyzjn/cleanrl, `cleanrl/dqn_atari.py`) as the FIRE
paper's DQN code extends it: gymnasium Atari envs with Python preprocessing wrappers (no-op reset, frame
skip with max-pool, episodic life, reward clipping, resize, grayscale, 4-frame stack) in a
SyncVectorEnv, a Stable-Baselines3-style replay buffer holding whole 4-frame stacks for obs and
next_obs, numpy -> torch copies at every sample, and `.item()` logging to TensorBoard every 100 steps.
The paper's settings replace CleanRL's defaults: 4 envs, one update per env step (replay ratio 1),
Huber loss, Adam(6.25e-5, eps 1.5e-4), no gradient clipping, hard target copies.

It is a speed reference, written to be as fast as that structure allows (no extra copies, no extra
syncs): it is not the project's DQN, and nothing else imports it except the benchmarks.
The wrappers and the buffer are our own short versions of the SB3 ones CleanRL imports (SB3 is not a
dependency of this project); they do the same work per step.

    python -m bench.reference.cleanrl_dqn --total-timesteps 5000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass

import ale_py
import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.tensorboard import SummaryWriter

gym.register_envs(ale_py)


@dataclass
class Args:
    env_id: str = "BreakoutNoFrameskip-v4"
    """the id of the environment"""
    seed: int = 1
    """seed of the experiment"""
    num_envs: int = 4
    """parallel game environments (the FIRE paper: 4)"""
    total_timesteps: int = 20_000
    """env steps summed over the envs"""
    learning_starts: int = 1_000
    """env steps before learning starts"""
    learning_rate: float = 6.25e-5
    """Adam learning rate"""
    adam_eps: float = 1.5e-4
    """Adam epsilon"""
    buffer_size: int = 20_000
    """replay capacity in transitions"""
    gamma: float = 0.99
    """discount factor"""
    target_network_frequency: int = 2_000
    """env steps between hard target copies"""
    batch_size: int = 32
    """transitions per update"""
    start_e: float = 1.0
    """exploration epsilon at the start"""
    end_e: float = 0.01
    """exploration epsilon at the end"""
    exploration_fraction: float = 0.10
    """fraction of total_timesteps over which epsilon decays"""
    replay_ratio: int = 1
    """updates per env step: num_envs * replay_ratio updates per vector step"""
    log_dir: str | None = None
    """TensorBoard directory (a temporary one if None)"""


# --- the SB3 Atari wrappers CleanRL uses, in short ---------------------------------------------------
class NoopResetEnv(gym.Wrapper):
    """Up to noop_max no-op actions after each reset."""

    def __init__(self, env: gym.Env, noop_max: int = 30):
        super().__init__(env)
        self.noop_max = noop_max

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        for _ in range(self.unwrapped.np_random.integers(1, self.noop_max + 1)):
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


class MaxAndSkipEnv(gym.Wrapper):
    """Repeat the action `skip` frames, sum rewards, max-pool the last two frames."""

    def __init__(self, env: gym.Env, skip: int = 4):
        super().__init__(env)
        self.skip = skip
        self.frames = np.zeros((2, *env.observation_space.shape), dtype=env.observation_space.dtype)

    def step(self, action):
        total_reward, terminated, truncated, info = 0.0, False, False, {}
        for i in range(self.skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            if i >= self.skip - 2:
                self.frames[i - (self.skip - 2)] = obs
            total_reward += float(reward)
            if terminated or truncated:
                break
        return self.frames.max(axis=0), total_reward, terminated, truncated, info


class EpisodicLifeEnv(gym.Wrapper):
    """A life loss terminates the episode for learning; the game only restarts at game over."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, _, _, info = self.env.step(0)
        self.lives = self.unwrapped.ale.lives()
        return obs, info


class ClipRewardEnv(gym.RewardWrapper):
    def reward(self, reward):
        return np.sign(reward)


def make_env(env_id: str, seed: int):
    def thunk():
        env = gym.make(env_id)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env = NoopResetEnv(env, noop_max=30)
        env = MaxAndSkipEnv(env, skip=4)
        env = EpisodicLifeEnv(env)
        env = ClipRewardEnv(env)
        env = gym.wrappers.ResizeObservation(env, (84, 84))
        env = gym.wrappers.GrayscaleObservation(env)
        env = gym.wrappers.FrameStackObservation(env, 4)
        env.action_space.seed(seed)
        return env

    return thunk


# --- SB3's ReplayBuffer (optimize_memory_usage=False, handle_timeout_termination=False), in short ------
@dataclass
class ReplayBufferSamples:
    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor


class ReplayBuffer:
    """Whole observations (4-frame stacks) for obs and next_obs, laid out (buffer_size / n_envs, n_envs, ...)."""

    def __init__(self, buffer_size: int, observation_space: gym.Space, n_envs: int, device: torch.device):
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.n_envs = n_envs
        self.device = device
        shape = (self.buffer_size, n_envs)
        self.observations = np.zeros((*shape, *observation_space.shape), dtype=observation_space.dtype)
        self.next_observations = np.zeros((*shape, *observation_space.shape), dtype=observation_space.dtype)
        self.actions = np.zeros((*shape, 1), dtype=np.int64)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.dones = np.zeros(shape, dtype=np.float32)
        self.pos = 0
        self.full = False

    def add(self, obs, next_obs, action, reward, done) -> None:
        self.observations[self.pos] = np.array(obs)
        self.next_observations[self.pos] = np.array(next_obs)
        self.actions[self.pos] = np.array(action).reshape((self.n_envs, 1))
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0

    def sample(self, batch_size: int) -> ReplayBufferSamples:
        upper = self.buffer_size if self.full else self.pos
        batch_inds = np.random.randint(0, upper, size=batch_size)  # noqa: NPY002  (SB3 uses the global RNG)
        env_inds = np.random.randint(0, self.n_envs, size=batch_size)  # noqa: NPY002
        data = (
            self.observations[batch_inds, env_inds],
            self.actions[batch_inds, env_inds],
            self.next_observations[batch_inds, env_inds],
            self.dones[batch_inds, env_inds].reshape(-1, 1),
            self.rewards[batch_inds, env_inds].reshape(-1, 1),
        )
        return ReplayBufferSamples(*(torch.tensor(array, device=self.device) for array in data))


class QNetwork(nn.Module):
    def __init__(self, num_actions: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3136, 512),
            nn.ReLU(),
            nn.Linear(512, num_actions),
        )

    def forward(self, x):
        return self.network(x / 255.0)


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def run(args: Args) -> dict[str, float]:
    """Train for args.total_timesteps; returns wall seconds and env steps per second of the whole loop."""
    random.seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002
    torch.manual_seed(args.seed)
    device = torch.device("cpu")
    writer = SummaryWriter(args.log_dir or tempfile.mkdtemp(prefix="cleanrl_dqn_"))

    # SAME_STEP autoreset gives infos["final_obs"] at episode ends, as gymnasium 0.29's vector env did.
    envs = gym.vector.SyncVectorEnv([make_env(args.env_id, args.seed + i) for i in range(args.num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    q_network = QNetwork(envs.single_action_space.n).to(device)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, eps=args.adam_eps)
    target_network = QNetwork(envs.single_action_space.n).to(device)
    target_network.load_state_dict(q_network.state_dict())
    rb = ReplayBuffer(args.buffer_size, envs.single_observation_space, args.num_envs, device)
    start_time = time.time()

    obs, _ = envs.reset(seed=args.seed)
    for global_step in range(0, args.total_timesteps, args.num_envs):
        # The FIRE paper's schedule: epsilon held at start_e until learning starts, then the linear decay
        # (CleanRL decays from step 0), so that both loops act alike in short benchmark runs.
        epsilon = linear_schedule(args.start_e, args.end_e, args.exploration_fraction * args.total_timesteps,
                                  max(global_step - args.learning_starts, 0))
        if random.random() < epsilon:
            actions = np.array([envs.single_action_space.sample() for _ in range(envs.num_envs)])
        else:
            q_values = q_network(torch.Tensor(obs).to(device))
            actions = torch.argmax(q_values, dim=1).cpu().numpy()

        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        if "episode" in infos:
            for i in np.flatnonzero(infos["_episode"]):
                writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
                writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)

        # CRUCIAL: a truncated transition bootstraps from the true final observation, not the reset one.
        real_next_obs = next_obs.copy()
        for idx, trunc in enumerate(truncations):
            if trunc:
                real_next_obs[idx] = infos["final_obs"][idx]
        rb.add(obs, real_next_obs, actions, rewards, terminations)
        obs = next_obs

        if global_step > args.learning_starts:
            for _ in range(args.num_envs * args.replay_ratio):
                data = rb.sample(args.batch_size)
                with torch.no_grad():
                    target_max, _ = target_network(data.next_observations).max(dim=1)
                    td_target = data.rewards.flatten() + args.gamma * target_max * (1 - data.dones.flatten())
                old_val = q_network(data.observations).gather(1, data.actions).squeeze()
                loss = F.smooth_l1_loss(td_target, old_val)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if global_step % 100 == 0:
                writer.add_scalar("losses/td_loss", loss.item(), global_step)
                writer.add_scalar("losses/q_values", old_val.mean().item(), global_step)
                writer.add_scalar("charts/SPS", int(global_step / (time.time() - start_time)), global_step)
            if global_step % args.target_network_frequency == 0:
                target_network.load_state_dict(q_network.state_dict())

    seconds = time.time() - start_time
    envs.close()
    writer.close()
    return {"seconds": seconds, "sps": args.total_timesteps / seconds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=int, default=Args.total_timesteps)
    parser.add_argument("--learning-starts", type=int, default=Args.learning_starts)
    cli = parser.parse_args()
    print(run(Args(total_timesteps=cli.total_timesteps, learning_starts=cli.learning_starts)))
