"""The shared actor-learner loop: act in vector envs, fill replay, update, intervene, evaluate, checkpoint.

One vector step of the actor adds `num_envs * action_repeat` env steps. The learner then does the
updates those env steps earned (`replay_ratio`), split at every intervention boundary, so that an
intervention scheduled at env step b always comes after exactly the updates of the first b env
steps, whatever `num_envs` is. Evaluation, logging and checkpoints happen at the end of the vector
step that crosses their boundary.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf

from agents import make_agent
from envs import make_vector, normalized_score, supports_state
from loop import checkpoint
from loop.config import REINIT_SCHEDULE_KEYS, resolve_device
from loop.logger import RunLogger
from loop.schedule import EventSchedule, UpdateBudget
from loop.video import VideoRecorder
from replay import make_replay

FORMAT = 1
# SIGTERM: scheduler kill or `kill`; SIGUSR1: SLURM's warning before the time limit (--signal=USR1@90);
# SIGUSR2: submitit's preemption signal (its handler requeues the job; we chain to it after checkpointing);
# SIGINT: Ctrl-C (a second Ctrl-C interrupts at once).
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)


class NonFiniteError(RuntimeError):
    """A NaN or inf reached a loss, a Q-value or an observation; the message names it and the env step."""


def seed_everything(seed: int) -> None:
    # Our components use their own generators; the global ones are seeded and checkpointed anyway
    # so that library code drawing from them cannot break determinism or exact resume.
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def random_actions(space: gym.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform actions for the warm-up, drawn from the loop's own (checkpointed) generator."""
    if isinstance(space, gym.spaces.Box):
        # The numbers rng.uniform(low, high) draws, without its ~25 us broadcasting path per call.
        return (space.low + (space.high - space.low) * rng.random((n, *space.shape))).astype(space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        return (space.start + rng.integers(space.n, size=n)).astype(space.dtype)
    raise ValueError(f"action space {space} is not supported; allowed: Box, Discrete")


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
        "loop": rng.bit_generator.state,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["loop"]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Owns the envs, agent, replay, counters and logs of one run (see the module docstring)."""

    def __init__(self, cfg: Mapping[str, Any], run_dir: Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg["threads"]))
        seed_everything(cfg["seed"])
        self.rng = np.random.default_rng(cfg["seed"])
        self.device = resolve_device(cfg["device"])

        env_cfg = cfg["env"]
        self.num_envs = int(env_cfg["num_envs"])
        self.action_repeat = int(env_cfg.get("action_repeat", 1))
        self.env_steps_per_vector_step = self.num_envs * self.action_repeat
        self.envs = make_vector(env_cfg, num_envs=self.num_envs)
        self.eval_envs: gym.vector.VectorEnv | None = None
        self.video: VideoRecorder | None = None
        self.action_space = self.envs.single_action_space

        self.agent = make_agent(cfg["agent"], self.envs.single_observation_space, self.action_space, self.device,
                                cfg["precision"])
        self.batch_size = int(cfg["replay"]["batch_size"])
        self.replay = make_replay(cfg["replay"], self.envs.single_observation_space, self.action_space,
                                  num_envs=self.num_envs, gamma=float(cfg["replay"]["gamma"]),
                                  device=self.device, seed=cfg["seed"],
                                  frame_stack_start=self.envs.metadata.get("frame_stack_start", "zeros"))

        reinit = cfg["reinit"]
        self.reinit_name = reinit["name"]
        # A null option means "the agent's paper default", so the agent never sees it.
        self.reinit_options = {k: v for k, v in reinit.items() if k not in REINIT_SCHEDULE_KEYS and v is not None}
        active = self.reinit_name != "none"
        self.reinit_schedule = EventSchedule(reinit.get("every_env_steps") if active else None,
                                             reinit.get("at_env_steps") or () if active else ())
        self.eval_schedule = EventSchedule(cfg["eval"]["every_env_steps"])
        self.checkpoint_schedule = EventSchedule(cfg["checkpoint"]["every_env_steps"])
        self.log_schedule = EventSchedule(cfg["log"]["every_env_steps"])
        self.budget = UpdateBudget(cfg["replay_ratio"], cfg["learning_starts"])
        self.total_env_steps = int(cfg["total_env_steps"])

        self.env_steps = 0
        self.updates = 0
        self.obs: np.ndarray | None = None
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.latest_return: float | None = None
        self.last_update_metrics: Mapping[str, torch.Tensor] = {}
        self.timings = {"act": 0.0, "env": 0.0, "replay": 0.0, "update": 0.0}
        self.logger: RunLogger | None = None
        self.purge_step: int | None = None
        self.reinit_at_start = False
        self.stop_signal: int | None = None
        # Updates AND into this flag on the learner's device; it is read (one sync) only when logging.
        self.updates_finite = torch.ones((), dtype=torch.bool, device=self.device)

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs; see loop.checkpoint for how it is written."""
        return {
            "format": FORMAT,
            "config": self.cfg,
            "env_steps": self.env_steps,
            "updates": self.updates,
            "budget": self.budget.state_dict(),
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "envs": self.envs.get_attr("state_blob") if supports_state(self.envs) else None,
            "obs": self.obs,
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
            "latest_return": self.latest_return,
            "rng": _rng_state(self.rng),
        }

    def resume(self, state: Mapping[str, Any]) -> None:
        """Continue a run exactly where its checkpoint left it (same envs mid-episode, same RNG)."""
        self._load_learning_state(state)
        if state["envs"] is None:
            raise ValueError("this checkpoint holds no env state, so it cannot be resumed exactly (Atari: only "
                             "env.kwargs.backend=gymnasium can be snapshotted); use load_checkpoint=<path> to "
                             "start a new run from its weights and replay")
        self.envs.reset(seed=self.cfg["seed"])
        self.envs.set_attr("state_blob", list(state["envs"]))
        self.obs = state["obs"]
        self.episode_return = state["episode_return"].copy()
        self.episode_length = state["episode_length"].copy()
        self.latest_return = state["latest_return"]
        _set_rng_state(self.rng, state["rng"])
        # Events logged after this checkpoint by the killed run are dropped from TensorBoard.
        self.purge_step = self.env_steps + 1

    def branch_from(self, state: Mapping[str, Any]) -> None:
        """Stage 2 of the paper's protocol: weights, optimisers and replay from a checkpoint, fresh
        episodes; the configured intervention is applied once when the run starts (`reinit.on_load`)."""
        self._load_learning_state(state)
        self.reinit_at_start = self.reinit_name != "none" and bool(self.cfg["reinit"].get("on_load", True))

    def _load_learning_state(self, state: Mapping[str, Any]) -> None:
        if state.get("format") != FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not supported; allowed: {FORMAT}")
        self.agent.load_state_dict(state["agent"])
        self.replay.load_state_dict(state["replay"])
        self.env_steps = int(state["env_steps"])
        self.updates = int(state["updates"])
        self.budget.load_state_dict(state["budget"])

    # ----------------------------------------------------------------------------- run
    def run(self) -> dict[str, float]:
        """Train to `total_env_steps`, or until a preemption signal (checkpoint, then return early).

        Returns the final evaluation's figures ({} when preempted)."""
        self.logger = RunLogger(self.run_dir, self.total_env_steps, self.env_steps,
                                quiet=bool(self.cfg.get("quiet")), purge_step=self.purge_step)
        if self.latest_return is not None:  # resumed: show the last episode's return until the next one ends
            self.logger.postfix["return"] = f"{self.latest_return:.1f}"
        if not self.purge_step:  # a new run (purge_step 0 restarts one in place), not a resumed one
            self.logger.text("config", "```yaml\n" + OmegaConf.to_yaml(OmegaConf.create(self.cfg)) + "\n```")
        if self.obs is None:
            self.obs, _ = self.envs.reset(seed=self.cfg["seed"])
        if self.reinit_at_start:
            self._reinit(self.env_steps, at_load=True)
            self.reinit_at_start = False
        window_start = (self.env_steps, time.perf_counter())
        final_eval: dict[str, float] = {}
        handlers = self._catch_preemption()
        try:
            while self.env_steps < self.total_env_steps:
                start = self.env_steps
                self._act()
                self._learn(start, self.env_steps)
                if self.log_schedule.between(start, self.env_steps):
                    window_start = self._log_progress(window_start)
                if self.eval_schedule.between(start, self.env_steps) or self.env_steps >= self.total_env_steps:
                    final_eval = self.evaluate()
                if self.checkpoint_schedule.between(start, self.env_steps) or self.env_steps >= self.total_env_steps:
                    self._check_updates_finite()
                    self.save_checkpoint()
                self.logger.advance(self.env_steps)
                if self.stop_signal is not None:
                    self._check_updates_finite()
                    path = self.save_checkpoint()
                    self.logger.message(f"{signal.Signals(self.stop_signal).name} at env step {self.env_steps}: "
                                        f"saved {path}; continue with resume={self.run_dir}")
                    final_eval = {}
                    break
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self.logger.close()
            self.envs.close()
            if self.eval_envs is not None:
                self.eval_envs.close()
            if self.video is not None:
                self.video.close()
        previous = handlers.get(self.stop_signal)
        # e.g. submitit's handler: it requeues the job, which then resumes our checkpoint.
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.stop_signal, None)
        return final_eval

    def _catch_preemption(self) -> dict[int, Any]:
        """Turn preemption signals into a checkpoint at the end of the current vector step."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def request_stop(signum, _frame):
            self.stop_signal = signum
            if signum == signal.SIGINT:
                signal.signal(signal.SIGINT, signal.default_int_handler)

        return {signum: signal.signal(signum, request_stop) for signum in PREEMPTION_SIGNALS}

    def _check_updates_finite(self) -> None:
        """Stop on a non-finite loss or Q-value: write a diagnostic checkpoint beside (never over) the
        good ones, then raise naming the metrics and the env-step window."""
        if bool(self.updates_finite):
            return
        bad = [tag for tag, value in self.last_update_metrics.items() if not torch.isfinite(value).all()]
        path = checkpoint.save_diagnostic(self.state_dict(), self.run_dir / "checkpoints", self.env_steps)
        raise NonFiniteError(f"non-finite {', '.join(bad) or 'update metric'} by env step {self.env_steps} "
                             f"(update {self.updates}); diagnostic checkpoint {path}")

    def _act(self) -> None:
        """One vector step: choose actions, step the envs, store transitions, close episodes."""
        tick = time.perf_counter()
        self.agent.observe(self.obs)
        if self.env_steps < self.cfg["learning_starts"]:
            actions = random_actions(self.action_space, self.num_envs, self.rng)
        else:
            actions = self.agent.act(self.obs, env_steps=self.env_steps, explore=True)
        tock = time.perf_counter()
        next_obs, rewards, terminations, truncations, infos = self.envs.step(actions)
        tuck = time.perf_counter()
        self._check_finite("observation", next_obs)
        self._check_finite("reward", rewards)

        # SAME_STEP autoreset: an ended env already returned its next episode's first observation;
        # the transition's true successor is info["final_obs"]. Truncated transitions bootstrap from it.
        real_next_obs = next_obs
        if "_final_obs" in infos and infos["_final_obs"].any():
            real_next_obs = next_obs.copy()
            for i in np.flatnonzero(infos["_final_obs"]):
                real_next_obs[i] = infos["final_obs"][i]
        self.replay.add(self.obs, actions, rewards, real_next_obs, terminations, truncations)
        self.obs = next_obs
        self.env_steps += self.env_steps_per_vector_step

        self.episode_return += rewards
        self.episode_length += 1
        # Atari with episodic life ends training episodes at a lost life; the logged episode is the game.
        ended = infos.get("game_over", terminations | truncations)
        for i in np.flatnonzero(ended) if ended.any() else ():
            self.latest_return = float(self.episode_return[i])
            self.logger.scalars({"charts/episodic_return": self.latest_return,
                                 "charts/episodic_length": self.episode_length[i] * self.action_repeat},
                                self.env_steps)
            self.logger.postfix["return"] = f"{self.latest_return:.1f}"
            self.episode_return[i] = 0.0
            self.episode_length[i] = 0
        self.timings["act"] += tock - tick
        self.timings["env"] += tuck - tock
        self.timings["replay"] += time.perf_counter() - tuck

    def _check_finite(self, name: str, values: np.ndarray) -> None:
        if values.dtype.kind != "f" or np.isfinite(values).all():
            return
        envs = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1)).tolist()
        path = checkpoint.save_diagnostic(self.state_dict(), self.run_dir / "checkpoints", self.env_steps)
        raise NonFiniteError(f"non-finite {name} from env(s) {envs} at env step {self.env_steps}; "
                             f"diagnostic checkpoint {path}")

    def _learn(self, start: int, stop: int) -> None:
        cursor = start
        for boundary in self.reinit_schedule.between(start, stop):
            self._update(self.budget.earn(cursor, boundary), start)
            self._reinit(boundary)
            cursor = boundary
        self._update(self.budget.earn(cursor, stop), start)

    def _update(self, n: int, acted_at: int) -> None:
        """n updates earned by the vector step whose actions were chosen at env step `acted_at`."""
        if n == 0:
            return
        tick = time.perf_counter()
        diagnostics_every = self.cfg["diagnostics"]["every_updates"]
        for _ in range(n):
            self.last_update_metrics = self.agent.update(self.replay.sample(self.batch_size), updates=self.updates,
                                                         env_steps=acted_at)
            self.updates_finite &= torch.isfinite(torch.stack(list(self.last_update_metrics.values()))).all()
            self.updates += 1
            if diagnostics_every and self.updates % diagnostics_every == 0:
                self.logger.scalars(self.agent.diagnostics(self.replay.sample(self.batch_size)), self.env_steps)
        self.timings["update"] += time.perf_counter() - tick

    def _reinit(self, env_steps: int, at_load: bool = False) -> dict[str, Any]:
        tick = time.perf_counter()
        reports = self.agent.reinit(self.reinit_name, self.reinit_options, self.replay.sample(self.batch_size))
        seconds = time.perf_counter() - tick
        self.logger.scalars({"reinit/event": 1.0, "reinit/seconds": seconds}, env_steps)
        lines = [f"[reinit] {self.reinit_name} at env step {env_steps}{' (on load)' if at_load else ''}, "
                 f"{seconds * 1e3:.1f} ms"]
        for network, report in reports.items():
            self.logger.scalars(report.scalars(f"reinit/{network}"), env_steps)
            lines.append(f"{network}:\n{report}")
        self.logger.message("\n".join(lines))
        return dict(reports)

    def _log_progress(self, window_start: tuple[int, float]) -> tuple[int, float]:
        self._check_updates_finite()
        steps0, time0 = window_start
        now = time.perf_counter()
        sps = (self.env_steps - steps0) / max(now - time0, 1e-9)
        values = {"charts/SPS": sps, "charts/updates": self.updates}
        values.update({k: float(v) for k, v in self.last_update_metrics.items()})
        total = sum(self.timings.values()) or 1.0
        values.update({f"perf/{phase}_fraction": t / total for phase, t in self.timings.items()})
        self.logger.scalars(values, self.env_steps)
        self.logger.postfix["SPS"] = f"{sps:.0f}"
        return self.env_steps, now

    # ----------------------------------------------------------------------------- eval, checkpoints
    def evaluate(self) -> dict[str, float]:
        """`eval.episodes` episodes of the deterministic policy on separate envs, or as many as finish
        within `eval.max_env_steps` (summed over the eval envs; unfinished episodes are not counted), seeded
        per evaluation so that resumed and uninterrupted runs evaluate identically."""
        if self.eval_envs is None:
            self.eval_envs = make_vector(self.cfg["env"], num_envs=int(self.cfg["env"]["eval_num_envs"]))
        envs, episodes = self.eval_envs, self.cfg["eval"]["episodes"]
        step_budget = self.cfg["eval"].get("max_env_steps") or np.inf
        n = envs.num_envs
        quota = np.full(n, np.iinfo(np.int64).max) if episodes is None else \
            np.array([episodes // n + (i < episodes % n) for i in range(n)])
        # Below 2**30 so that seed + env index stays a valid int32 seed (ALE's limit).
        seed = int(np.random.SeedSequence([self.cfg["seed"], 1, self.env_steps]).generate_state(1)[0]) >> 2
        obs, _ = envs.reset(seed=seed)
        running, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
        finished = np.zeros(n, dtype=np.int64)
        returns, episode_lengths = [], []
        steps = 0
        while (finished < quota).any() and steps < step_budget:
            actions = self.agent.act(obs, env_steps=self.env_steps, explore=False)
            obs, rewards, terminations, truncations, infos = envs.step(actions)
            steps += n * self.action_repeat
            running += rewards
            lengths += 1
            for i in np.flatnonzero(infos.get("game_over", terminations | truncations)):
                if finished[i] < quota[i]:
                    returns.append(running[i])
                    episode_lengths.append(lengths[i] * self.action_repeat)
                    finished[i] += 1
                running[i], lengths[i] = 0.0, 0
        if self.cfg["eval"].get("video"):
            self._record_video(seed)
        if not returns:
            self.logger.message(f"[eval] no episode finished within eval.max_env_steps={step_budget}")
            return {}
        figures = {"eval/episodic_return": float(np.mean(returns)),
                   "eval/episodic_return_std": float(np.std(returns)),
                   "eval/episodic_length": float(np.mean(episode_lengths)),
                   "eval/episodes": float(len(returns))}
        score = normalized_score(envs.metadata, figures["eval/episodic_return"])
        if score is not None:
            figures["eval/normalized_score"] = score
        self.logger.scalars(figures, self.env_steps)
        self.logger.postfix["eval"] = f"{figures['eval/episodic_return']:.1f}"
        self.logger.line(self.env_steps)
        return figures

    def _record_video(self, seed: int) -> None:
        if self.video is None:
            self.video = VideoRecorder(self.cfg["env"], int(self.cfg["eval"].get("video_max_steps", 1000)))
        path = self.run_dir / "videos" / f"eval_step_{self.env_steps:012d}.mp4"
        frames = self.video.record(self.agent, env_steps=self.env_steps, seed=seed, path=path)
        self.logger.message(f"[eval] video {path} ({frames} frames)")

    def save_checkpoint(self) -> Path:
        cfg = self.cfg["checkpoint"]
        tick = time.perf_counter()
        path = checkpoint.save(self.state_dict(), self.run_dir / "checkpoints", self.env_steps, int(cfg["keep"]))
        self.logger.scalars({"perf/checkpoint_seconds": time.perf_counter() - tick}, self.env_steps)
        return path
