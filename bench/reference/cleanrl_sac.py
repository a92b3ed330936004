"""Reference for bench/sac_speed.py: a single-file SAC written the way CleanRL's `sac_continuous_action.py` is.

Structure as in CleanRL (github.com/vwxyzjn/cleanrl, `cleanrl/sac_continuous_action.py`): one env in a
SyncVectorEnv, an SB3-style replay buffer with numpy -> torch copies per sample, per-step
`torch.Tensor(obs)` for the actor, two separate Q-networks with one optimiser over both, an actor
optimiser and a temperature optimiser, the delayed actor (policy_frequency 2, then that many actor and
temperature steps), `alpha = log_alpha.exp().item()` after each temperature step, Polyak target updates
over parameter lists, and `.item()` logging every 100 steps. Networks are CleanRL's 256x256 MLPs.

A speed reference only, written as fast as that structure allows; nothing but the benchmarks imports it.

    python -m bench.reference.cleanrl_sac --total-timesteps 2000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import envs  # noqa: F401  (registers the H1 tasks)

LOG_STD_MAX = 2
LOG_STD_MIN = -5


@dataclass
class Args:
    env_id: str = "h1-walk-v0"
    """the id of the environment"""
    seed: int = 1
    """seed of the experiment"""
    total_timesteps: int = 2_000
    """env steps"""
    buffer_size: int = 1_000_000
    """replay capacity"""
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    learning_starts: int = 1_000
    """env steps of random actions before learning"""
    policy_lr: float = 3e-4
    q_lr: float = 1e-3
    policy_frequency: int = 2
    """actor (and temperature) updates every N steps, N of them at once"""
    target_network_frequency: int = 1
    alpha: float = 0.2
    autotune: bool = True
    """learn the entropy temperature"""
    log_dir: str | None = None


def make_env(env_id: str, seed: int):
    def thunk():
        env = gym.make(env_id)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env.action_space.seed(seed)
        return env

    return thunk


class ReplayBufferSamples:
    def __init__(self, observations, actions, next_observations, dones, rewards):
        self.observations, self.actions, self.next_observations = observations, actions, next_observations
        self.dones, self.rewards = dones, rewards


class ReplayBuffer:
    """SB3's ReplayBuffer (one env, handle_timeout_termination=False), in short."""

    def __init__(self, buffer_size: int, obs_shape: tuple, action_shape: tuple, device: torch.device):
        self.buffer_size, self.device = buffer_size, device
        self.observations = np.zeros((buffer_size, 1, *obs_shape), dtype=np.float32)
        self.next_observations = np.zeros((buffer_size, 1, *obs_shape), dtype=np.float32)
        self.actions = np.zeros((buffer_size, 1, *action_shape), dtype=np.float32)
        self.rewards = np.zeros((buffer_size, 1), dtype=np.float32)
        self.dones = np.zeros((buffer_size, 1), dtype=np.float32)
        self.pos, self.full = 0, False

    def add(self, obs, next_obs, action, reward, done) -> None:
        self.observations[self.pos] = np.array(obs)
        self.next_observations[self.pos] = np.array(next_obs)
        self.actions[self.pos] = np.array(action)
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0

    def sample(self, batch_size: int) -> ReplayBufferSamples:
        upper = self.buffer_size if self.full else self.pos
        inds = np.random.randint(0, upper, size=batch_size)  # noqa: NPY002  (SB3 uses the global RNG)
        data = (self.observations[inds, 0], self.actions[inds, 0], self.next_observations[inds, 0],
                self.dones[inds], self.rewards[inds])
        return ReplayBufferSamples(*(torch.tensor(array, device=self.device) for array in data))


class SoftQNetwork(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim + action_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 1)

    def forward(self, x, a):
        x = torch.cat([x, a], 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class Actor(nn.Module):
    def __init__(self, obs_dim: int, action_space: gym.spaces.Box):
        super().__init__()
        action_dim = action_space.shape[0]
        self.fc1 = nn.Linear(obs_dim, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc_mean = nn.Linear(256, action_dim)
        self.fc_logstd = nn.Linear(256, action_dim)
        self.register_buffer("action_scale", torch.tensor((action_space.high - action_space.low) / 2.0,
                                                          dtype=torch.float32))
        self.register_buffer("action_bias", torch.tensor((action_space.high + action_space.low) / 2.0,
                                                         dtype=torch.float32))

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        mean = self.fc_mean(x)
        log_std = torch.tanh(self.fc_logstd(x))
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)
        return mean, log_std

    def get_action(self, x):
        mean, log_std = self(x)
        normal = torch.distributions.Normal(mean, log_std.exp())
        x_t = normal.rsample()  # reparameterisation trick
        y_t = torch.tanh(x_t)
        action = y_t * self.action_scale + self.action_bias
        log_prob = normal.log_prob(x_t)
        # Enforcing the action bound (tanh change of variables)
        log_prob -= torch.log(self.action_scale * (1 - y_t.pow(2)) + 1e-6)
        log_prob = log_prob.sum(1, keepdim=True)
        return action, log_prob, torch.tanh(mean) * self.action_scale + self.action_bias


def run(args: Args) -> dict[str, float]:
    """Train for args.total_timesteps; returns wall seconds and env steps per second of the whole loop."""
    random.seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002
    torch.manual_seed(args.seed)
    device = torch.device("cpu")
    writer = SummaryWriter(args.log_dir or tempfile.mkdtemp(prefix="cleanrl_sac_"))

    envs_ = gym.vector.SyncVectorEnv([make_env(args.env_id, args.seed)],
                                     autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs_dim = envs_.single_observation_space.shape[0]
    action_dim = envs_.single_action_space.shape[0]
    actor = Actor(obs_dim, envs_.single_action_space).to(device)
    qf1, qf2 = SoftQNetwork(obs_dim, action_dim).to(device), SoftQNetwork(obs_dim, action_dim).to(device)
    qf1_target, qf2_target = SoftQNetwork(obs_dim, action_dim).to(device), SoftQNetwork(obs_dim, action_dim).to(device)
    qf1_target.load_state_dict(qf1.state_dict())
    qf2_target.load_state_dict(qf2.state_dict())
    q_optimizer = torch.optim.Adam(list(qf1.parameters()) + list(qf2.parameters()), lr=args.q_lr)
    actor_optimizer = torch.optim.Adam(list(actor.parameters()), lr=args.policy_lr)

    if args.autotune:
        target_entropy = -torch.prod(torch.Tensor(envs_.single_action_space.shape).to(device)).item()
        log_alpha = torch.zeros(1, requires_grad=True, device=device)
        alpha = log_alpha.exp().item()
        a_optimizer = torch.optim.Adam([log_alpha], lr=args.q_lr)
    else:
        alpha = args.alpha

    rb = ReplayBuffer(min(args.buffer_size, args.total_timesteps), envs_.single_observation_space.shape,
                      envs_.single_action_space.shape, device)
    start_time = time.time()

    obs, _ = envs_.reset(seed=args.seed)
    for global_step in range(args.total_timesteps):
        if global_step < args.learning_starts:
            actions = np.array([envs_.single_action_space.sample() for _ in range(envs_.num_envs)])
        else:
            actions, _, _ = actor.get_action(torch.Tensor(obs).to(device))
            actions = actions.detach().cpu().numpy()

        next_obs, rewards, terminations, truncations, infos = envs_.step(actions)
        if "episode" in infos:
            for i in np.flatnonzero(infos["_episode"]):
                writer.add_scalar("charts/episodic_return", infos["episode"]["r"][i], global_step)
                writer.add_scalar("charts/episodic_length", infos["episode"]["l"][i], global_step)

        # CRUCIAL: a truncated transition bootstraps from the true final observation.
        real_next_obs = next_obs.copy()
        for idx, trunc in enumerate(truncations):
            if trunc:
                real_next_obs[idx] = infos["final_obs"][idx]
        rb.add(obs, real_next_obs, actions, rewards, terminations)
        obs = next_obs

        if global_step > args.learning_starts:
            data = rb.sample(args.batch_size)
            with torch.no_grad():
                next_state_actions, next_state_log_pi, _ = actor.get_action(data.next_observations)
                qf1_next_target = qf1_target(data.next_observations, next_state_actions)
                qf2_next_target = qf2_target(data.next_observations, next_state_actions)
                min_qf_next_target = torch.min(qf1_next_target, qf2_next_target) - alpha * next_state_log_pi
                next_q_value = (data.rewards.flatten()
                                + (1 - data.dones.flatten()) * args.gamma * min_qf_next_target.view(-1))

            qf1_a_values = qf1(data.observations, data.actions).view(-1)
            qf2_a_values = qf2(data.observations, data.actions).view(-1)
            qf1_loss = F.mse_loss(qf1_a_values, next_q_value)
            qf2_loss = F.mse_loss(qf2_a_values, next_q_value)
            qf_loss = qf1_loss + qf2_loss
            q_optimizer.zero_grad()
            qf_loss.backward()
            q_optimizer.step()

            if global_step % args.policy_frequency == 0:  # TD3-style delayed update, compensated
                for _ in range(args.policy_frequency):
                    pi, log_pi, _ = actor.get_action(data.observations)
                    min_qf_pi = torch.min(qf1(data.observations, pi), qf2(data.observations, pi))
                    actor_loss = ((alpha * log_pi) - min_qf_pi).mean()
                    actor_optimizer.zero_grad()
                    actor_loss.backward()
                    actor_optimizer.step()
                    if args.autotune:
                        with torch.no_grad():
                            _, log_pi, _ = actor.get_action(data.observations)
                        alpha_loss = (-log_alpha.exp() * (log_pi + target_entropy)).mean()
                        a_optimizer.zero_grad()
                        alpha_loss.backward()
                        a_optimizer.step()
                        alpha = log_alpha.exp().item()

            if global_step % args.target_network_frequency == 0:
                for param, target_param in zip(qf1.parameters(), qf1_target.parameters(), strict=True):
                    target_param.data.copy_(args.tau * param.data + (1 - args.tau) * target_param.data)
                for param, target_param in zip(qf2.parameters(), qf2_target.parameters(), strict=True):
                    target_param.data.copy_(args.tau * param.data + (1 - args.tau) * target_param.data)

            if global_step % 100 == 0:
                writer.add_scalar("losses/qf1_values", qf1_a_values.mean().item(), global_step)
                writer.add_scalar("losses/qf2_values", qf2_a_values.mean().item(), global_step)
                writer.add_scalar("losses/qf1_loss", qf1_loss.item(), global_step)
                writer.add_scalar("losses/qf2_loss", qf2_loss.item(), global_step)
                writer.add_scalar("losses/qf_loss", qf_loss.item() / 2.0, global_step)
                writer.add_scalar("losses/actor_loss", actor_loss.item(), global_step)
                writer.add_scalar("losses/alpha", alpha, global_step)
                writer.add_scalar("charts/SPS", int(global_step / (time.time() - start_time)), global_step)

    seconds = time.time() - start_time
    envs_.close()
    writer.close()
    return {"seconds": seconds, "sps": args.total_timesteps / seconds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-timesteps", type=int, default=Args.total_timesteps)
    parser.add_argument("--learning-starts", type=int, default=Args.learning_starts)
    cli = parser.parse_args()
    print(run(Args(total_timesteps=cli.total_timesteps, learning_starts=cli.learning_starts)))
