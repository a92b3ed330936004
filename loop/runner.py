"""The shared actor-learner loop: act in vector envs, fill replay, update, intervene, evaluate, checkpoint.

One vector step of the actor adds `num_envs * action_repeat` env steps. The learner then does the
updates those env steps earned (`replay_ratio`), split at every intervention boundary, so that an
intervention scheduled at env step b always comes after exactly the updates of the first b env
steps, whatever `num_envs` is. Evaluation, logging and checkpoints happen at the end of the vector
step that crosses their boundary, evaluation before the checkpoint. An evaluation that does not
complete (a stop signal, a crash) leaves a checkpoint that records it as due, with the learner's state
from before it, so that a resumed run redoes it and continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf

from agents import make_agent
from envs import make_vector, supports_state
from loop import checkpoint
from loop.config import REINIT_SCHEDULE_KEYS, resolve_device
from loop.episodes import episode_ended, final_observations
from loop.evaluation import Evaluator
from loop.guard import NonFiniteError, check_finite
from loop.logger import RunLogger
from loop.progress import WARM_UP
from loop.schedule import EventSchedule, UpdateBudget
from loop.seeding import rng_state, seed_everything, set_rng_state
from loop.signals import StopRequested, StopSignals
from loop.threads import AUTO, ThreadTuner, auto_counts, updates_depend_on_threads
from loop.trigger import Trigger
from replay import make_replay
from replay.base import Batch

FORMAT = 1


def random_actions(space: gym.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform actions for the warm-up, drawn from the loop's own (checkpointed) generator."""
    if isinstance(space, gym.spaces.Box):
        # The numbers rng.uniform(low, high) draws, without its ~25 us broadcasting path per call.
        return (space.low + (space.high - space.low) * rng.random((n, *space.shape))).astype(space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        return (space.start + rng.integers(space.n, size=n)).astype(space.dtype)
    raise ValueError(f"action space {space} is not supported; allowed: Box, Discrete")


class Trainer:
    """Owns the envs, agent, replay, counters and logs of one run (see the module docstring)."""

    def __init__(self, cfg: Mapping[str, Any], run_dir: Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        # None when the count is pinned; `auto` times the learning iterations to choose it (loop/threads.py).
        self.threads = ThreadTuner(auto_counts()) if cfg["threads"] == AUTO else None
        self.threads_checked = False  # whether this agent's updates are bit-identical at the tuner's counts
        if self.threads is None:
            torch.set_num_threads(int(cfg["threads"]))
        seed_everything(cfg["seed"])
        self.rng = np.random.default_rng(cfg["seed"])
        self.device = resolve_device(cfg["device"])

        env_cfg = cfg["env"]
        self.num_envs = int(env_cfg["num_envs"])
        self.action_repeat = int(env_cfg.get("action_repeat", 1))
        self.env_steps_per_vector_step = self.num_envs * self.action_repeat
        self.envs = make_vector(env_cfg, num_envs=self.num_envs)
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
        self.trigger = Trigger(reinit["trigger"], reinit.get("threshold"), reinit["min_gap_env_steps"],
                               reinit["check_every_env_steps"]) if active and reinit["trigger"] else None
        # Heavy priming (Nikishin et al. 2022): extra updates at learning_starts, when the replay holds
        # exactly the warm-up's transitions (loop.config requires learning_starts on a vector-step boundary).
        self.priming_updates = int(cfg["priming_updates"])
        self.priming_schedule = EventSchedule(at=[cfg["learning_starts"]] if self.priming_updates else ())
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
        self.signals = StopSignals()
        self.evaluator = Evaluator(env_cfg, cfg["eval"], seed=cfg["seed"],
                                   stop_requested=lambda: self.signals.received is not None)
        self.video_on = bool(cfg["eval"].get("video"))
        # An evaluation at self.env_steps that has not completed, and the learner state from before it.
        self.eval_due = False
        self.state_before_eval: dict[str, Any] | None = None
        self.checkpointed_at: int | None = None  # env step of the newest checkpoint written or resumed
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
            "replay": self.replay.state_dict(),
            "envs": self.envs.get_attr("state_blob") if supports_state(self.envs) else None,
            "obs": self.obs,
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
            "latest_return": self.latest_return,
            # Agent and generators as they were before an evaluation that is still due (it may draw from them).
            **(self.state_before_eval or self._learner_state()),
            "eval_due": self.eval_due,
            "trigger": self.trigger.state_dict() if self.trigger else None,
        }

    def _learner_state(self) -> dict[str, Any]:
        """The part of the state an evaluation may change: the agent (e.g. DQN's eval epsilon draws) and RNGs."""
        return {"agent": self.agent.state_dict(), "rng": rng_state(self.rng)}

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
        set_rng_state(self.rng, state["rng"])
        self.eval_due = bool(state.get("eval_due", False))
        self.checkpointed_at = self.env_steps
        if self.trigger and state.get("trigger"):
            self.trigger.load_state_dict(state["trigger"])
        # Events logged after this checkpoint by the killed run are dropped from TensorBoard.
        self.purge_step = self.env_steps + 1

    def branch_from(self, state: Mapping[str, Any]) -> None:
        """Stage 2 of the paper's protocol: weights, optimisers and replay from a checkpoint, fresh
        episodes; the configured intervention is applied once when the run starts (`reinit.on_load`)."""
        self._load_learning_state(state)
        if state.get("obs") is not None:  # the branch starts fresh episodes: none may continue in replay
            self.replay.end_episodes(state["obs"])
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
        """Train to `total_env_steps`, or until a stop signal (checkpoint, then return early).

        Returns the final evaluation's figures ({} when stopped early). The logger, the eval envs and the
        signal handlers live exactly as long as this call; the handlers outlive the teardown."""
        final_eval: dict[str, float] = {}
        with self.signals, RunLogger(self.run_dir, self.total_env_steps, self.env_steps, quiet=bool(
                self.cfg.get("quiet")), purge_step=self.purge_step) as self.logger, self.evaluator:
            try:
                final_eval = self._train()
            except NonFiniteError as error:
                path = checkpoint.save_diagnostic(self.state_dict(), self.run_dir / "checkpoints", self.env_steps)
                raise NonFiniteError(f"{error}; diagnostic checkpoint {path}") from None
            finally:
                self.envs.close()
        if self.stopped_early:
            self.signals.chain()
        return final_eval

    @property
    def stopped_early(self) -> bool:
        """A stop signal ended the run before its last evaluation completed."""
        return self.signals.received is not None and (self.env_steps < self.total_env_steps or self.eval_due)

    def _train(self) -> dict[str, float]:
        progress = self.logger.progress
        if self.latest_return is not None:  # resumed: show the last episode's return until the next one ends
            progress.figures["return"] = f"{self.latest_return:.1f}"
        if not self.purge_step:  # a new run (purge_step 0 restarts one in place), not a resumed one
            self.logger.text("config", "```yaml\n" + OmegaConf.to_yaml(OmegaConf.create(self.cfg)) + "\n```")
        if self.obs is None:
            self.obs, _ = self.envs.reset(seed=self.cfg["seed"])
            check_finite(self.obs, "reset observation", "env(s)", self.env_steps)
        if self.reinit_at_start:
            self._reinit(self.env_steps, at_load=True)
            self.reinit_at_start = False
        final_eval: dict[str, float] = {}
        if self.eval_due:  # resumed from an evaluation that did not complete
            final_eval = self._evaluate() or {}
            if not self.eval_due:
                self.save_checkpoint()  # the same env step, now with the evaluation done
        window_start = (self.env_steps, time.perf_counter())
        while self.env_steps < self.total_env_steps and self.signals.received is None:
            start, tick = self.env_steps, time.perf_counter()
            learning = start >= self.cfg["learning_starts"]
            progress.set_phase("learning" if learning else WARM_UP)
            self._act()
            events = self._learn(start, self.env_steps)
            if self.threads and learning and not events:
                self._time_threads(self.env_steps - start, time.perf_counter() - tick)
            if self.log_schedule.between(start, self.env_steps):
                window_start = self._log_progress(window_start)
            last = self.env_steps >= self.total_env_steps
            if self.eval_schedule.between(start, self.env_steps) or last:
                final_eval = self._evaluate() or {}
            if self.signals.received is None and (self.checkpoint_schedule.between(start, self.env_steps) or last):
                self.save_checkpoint()
            progress.advance(self.env_steps)
        if self.stopped_early:
            self._stop()
            return {}
        return final_eval

    def _stop(self) -> None:
        """Checkpoint (unless this env step's checkpoint exists) and say how to continue."""
        path = checkpoint.checkpoint_path(self.run_dir / "checkpoints", self.env_steps)
        if self.checkpointed_at != self.env_steps:
            path = self.save_checkpoint()
        during = " during the evaluation (a resumed run redoes it)" if self.eval_due else ""
        if supports_state(self.envs):
            hint = f"continue with resume={self.run_dir}"
        else:
            hint = (f"these envs cannot be snapshotted, so resume= cannot continue this run; start a new run with "
                    f"the same settings and load_checkpoint={path} (same weights and replay, fresh episodes)")
        self.logger.progress.close()  # the command to copy is the last line, not followed by a redrawn bar
        self.logger.message(f"{self.signals.name} at env step {self.env_steps}{during}: saved {path}; {hint}")

    def _check_updates_finite(self) -> None:
        """Stop on a non-finite loss or Q-value, naming the metrics and the env-step window."""
        if bool(self.updates_finite):
            return
        bad = [tag for tag, value in self.last_update_metrics.items() if not torch.isfinite(value).all()]
        raise NonFiniteError(f"non-finite {', '.join(bad) or 'update metric'} by env step {self.env_steps} "
                             f"(update {self.updates})")

    def _act(self) -> None:
        """One vector step: choose actions, step the envs, store transitions, close episodes."""
        tick = time.perf_counter()
        self.agent.observe(self.obs)
        if self.env_steps < self.cfg["learning_starts"]:
            actions = random_actions(self.action_space, self.num_envs, self.rng)
        else:
            actions = self.agent.act(self.obs, env_steps=self.env_steps, explore=True)
            check_finite(actions, "action", "the agent (not the env), for env(s)", self.env_steps)
        tock = time.perf_counter()
        next_obs, rewards, terminations, truncations, infos = self.envs.step(actions)
        tuck = time.perf_counter()
        check_finite(next_obs, "observation", "env(s)", self.env_steps)
        check_finite(rewards, "reward", "env(s)", self.env_steps)
        # Truncated transitions bootstrap from the true last observation, so it is guarded like the others.
        successors = final_observations(next_obs, infos)
        if successors is not next_obs:
            check_finite(successors, "final observation (info['final_obs'])", "env(s)", self.env_steps)
        self.replay.add(self.obs, actions, rewards, successors, terminations, truncations)
        self.obs = next_obs
        self.env_steps += self.env_steps_per_vector_step

        self.episode_return += rewards
        self.episode_length += 1
        ended = episode_ended(terminations, truncations, infos)
        for i in np.flatnonzero(ended) if ended.any() else ():
            self.latest_return = float(self.episode_return[i])
            self.logger.scalars({"charts/episodic_return": self.latest_return,
                                 "charts/episodic_length": self.episode_length[i] * self.action_repeat},
                                self.env_steps)
            self.logger.progress.figures["return"] = f"{self.latest_return:.1f}"
            self.episode_return[i] = 0.0
            self.episode_length[i] = 0
        self.timings["act"] += tock - tick
        self.timings["env"] += tuck - tock
        self.timings["replay"] += time.perf_counter() - tuck

    def _learn(self, start: int, stop: int) -> bool:
        """The updates env steps (start, stop] earned, split at each event boundary b, where the events
        happen in this order: priming, the scheduled intervention, the trigger's check. True when an event
        happened."""
        priming = self.priming_schedule.between(start, stop)
        scheduled = self.reinit_schedule.between(start, stop)
        checks = self.trigger.checks.between(start, stop) if self.trigger else []
        cursor = start
        for boundary in sorted({*priming, *scheduled, *checks}) if priming or scheduled or checks else ():
            self._update(self.budget.earn(cursor, boundary), start)
            cursor = boundary
            if boundary in priming:
                with self.logger.progress.during(f"priming ({self.priming_updates} updates)"):
                    self._update(self.priming_updates, start)
            if boundary in scheduled:
                self._reinit(boundary)
            if boundary in checks:
                self._check_trigger(boundary)
        self._update(self.budget.earn(cursor, stop), start)
        return bool(priming or scheduled or checks)

    def _check_threads(self, batch: Batch, **update_args: int) -> None:
        """Before the first update of an `auto` run (fresh or resumed): keep 1 thread if this agent's updates
        differ in their bits between the counts on this machine (loop/threads.py)."""
        self.threads_checked = True
        if self.device.type != "cpu" or len(self.threads.counts) < 2:
            return
        if updates_depend_on_threads(self.agent, batch, self.threads.counts, **update_args):
            self.threads = None
            torch.set_num_threads(1)
            self.logger.progress.figures["threads"] = "1"
            self.logger.message("threads=auto keeps 1 thread: on this CPU this agent's updates give different "
                                "results at 1 and 2 threads, and results must not depend on the machine's load; "
                                "threads=2 pins 2")

    def _time_threads(self, env_steps: int, seconds: float) -> None:
        self.threads.record(env_steps, seconds)
        self.logger.progress.figures["threads"] = str(self.threads.current)

    def _update(self, n: int, acted_at: int) -> None:
        """n updates earned by the vector step whose actions were chosen at env step `acted_at`."""
        if n == 0:
            return
        tick = time.perf_counter()
        diagnostics_every = self.cfg["diagnostics"]["every_updates"]
        for _ in range(n):
            batch = self.replay.sample(self.batch_size)
            if self.threads and not self.threads_checked:
                self._check_threads(batch, updates=self.updates, env_steps=acted_at)
            self.last_update_metrics = self.agent.update(batch, updates=self.updates, env_steps=acted_at)
            self.updates_finite &= torch.isfinite(torch.stack(list(self.last_update_metrics.values()))).all()
            self.updates += 1
            if diagnostics_every and self.updates % diagnostics_every == 0:
                self.logger.scalars(self.agent.diagnostics(self.replay.sample(self.batch_size)), self.env_steps)
        self.timings["update"] += time.perf_counter() - tick

    def _check_trigger(self, env_steps: int) -> None:
        """Measure the trigger's signal on a replay batch (once something was learnt); intervene if it
        crossed the threshold and the gap allows."""
        if self.updates == 0:
            return
        value = self.trigger.measure(self.agent.diagnostics(self.replay.sample(self.batch_size)))
        self.logger.scalars({f"reinit/signal/{self.trigger.signal}": value}, env_steps)
        if self.trigger.crossed(value) and self.trigger.allowed(env_steps):
            self._reinit(env_steps, trigger_value=value)

    def _reinit(self, env_steps: int, at_load: bool = False, trigger_value: float | None = None) -> dict[str, Any]:
        tick = time.perf_counter()
        with self.logger.progress.during("reinit"):
            reports = self.agent.reinit(self.reinit_name, self.reinit_options, self.replay.sample(self.batch_size))
        seconds = time.perf_counter() - tick
        self.logger.scalars({"reinit/event": 1.0, "reinit/seconds": seconds}, env_steps)
        why = " (on load)" if at_load else ""
        if trigger_value is not None:
            self.logger.scalars({"reinit/trigger_value": trigger_value}, env_steps)
            why = f" (trigger: {self.trigger.signal}={trigger_value:.4g}, threshold {self.trigger.threshold:g})"
        if self.trigger:
            self.trigger.last_intervention = env_steps
        lines = [f"[reinit] {self.reinit_name} at env step {env_steps}{why}, {seconds * 1e3:.1f} ms"]
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
        values = {"charts/SPS": sps, "charts/updates": self.updates, "perf/threads": torch.get_num_threads()}
        values.update({k: float(v) for k, v in self.last_update_metrics.items()})
        total = sum(self.timings.values()) or 1.0
        values.update({f"perf/{phase}_fraction": t / total for phase, t in self.timings.items()})
        self.logger.scalars(values, self.env_steps)
        return self.env_steps, now

    # ----------------------------------------------------------------------------- eval, checkpoints
    def _evaluate(self) -> dict[str, float] | None:
        """Evaluate (and film) at this env step; None when a stop signal abandoned it. A crash in it still
        leaves a checkpoint (that redoes it); a failing video is reported and turns videos off."""
        if self.state_before_eval is None:  # also when resumed with this evaluation due
            self.eval_due, self.state_before_eval = True, self._learner_state()
        try:
            with self.logger.progress.during("evaluation"):
                figures = self.evaluator.evaluate(self.agent, self.env_steps)
            if self.video_on:
                self._record_video()
        except StopRequested:
            return None
        except NonFiniteError:
            raise
        except Exception:
            path = self.save_checkpoint()
            self.logger.message(f"[eval] failed at env step {self.env_steps}; saved {path}, which redoes it")
            raise
        self.eval_due, self.state_before_eval = False, None
        if not figures:
            budget = self.cfg["eval"].get("max_env_steps")
            self.logger.message(f"[eval] no episode finished within eval.max_env_steps={budget}")
            return figures
        self.logger.scalars(figures, self.env_steps)
        self.logger.progress.figures["eval"] = f"{figures['eval/episodic_return']:.1f}"
        self.logger.progress.line()
        return figures

    def _record_video(self) -> None:
        path = self.run_dir / "videos" / f"eval_step_{self.env_steps:012d}.mp4"
        try:
            with self.logger.progress.during("video"):
                frames = self.evaluator.record_video(self.agent, self.env_steps, path)
        except StopRequested:
            raise
        except Exception as error:  # a video is a by-product: it never ends the run
            self.video_on = False
            self.logger.message(f"[eval] video at env step {self.env_steps} failed ({type(error).__name__}: "
                                f"{error}); no more videos in this run")
            return
        self.logger.message(f"[eval] video {path} ({frames} frames)")

    def save_checkpoint(self) -> Path:
        self._check_updates_finite()
        tick = time.perf_counter()
        with self.logger.progress.during("checkpoint"):
            path = checkpoint.save(self.state_dict(), self.run_dir / "checkpoints", self.env_steps,
                                   int(self.cfg["checkpoint"]["keep"]))
        self.checkpointed_at = self.env_steps
        self.logger.scalars({"perf/checkpoint_seconds": time.perf_counter() - tick}, self.env_steps)
        return path
