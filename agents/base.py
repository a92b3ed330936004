"""The agent contract: the one interface the shared actor-learner loop talks to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch

import fire
import fire.options
import fire.registry
from replay.base import Batch


class Agent(Protocol):
    """SAC and DQN implement this; the loop never looks inside an agent.

    Units: `env_steps` counts steps of the underlying environment summed over the vector envs
    (action repeat included); it is the x-axis of every log.
    """

    device: torch.device

    def act(self, obs: np.ndarray, *, env_steps: int, explore: bool) -> np.ndarray:
        """Actions for a batch of observations (num_envs, *obs_shape), as numpy, env-ready.

        explore=False is the evaluation policy (SAC: tanh of the mean; DQN: epsilon 0.001).
        """

    def observe(self, obs: np.ndarray) -> None:
        """See the actor-side observations of one vector step (observation normaliser statistics).

        Called for every vector step, random-action warm-up included; a no-op for agents without one.
        """

    def update(self, batch: Batch, *, updates: int, env_steps: int) -> Mapping[str, torch.Tensor]:
        """One gradient update, the `updates`-th of the run (0 first), earned in the vector step whose
        actions were chosen at `env_steps`. Returns detached 0-d tensors keyed by TensorBoard tag
        (`losses/critic`, `losses/alpha`, ...); the loop calls .item() only when it logs."""

    def reinit(self, name: str, options: Mapping[str, Any], batch: Batch | None) -> Mapping[str, Any]:
        """Apply the intervention `name` (fire.registry) with this agent's semantics; see AgentBase."""

    def diagnostics(self, batch: Batch) -> Mapping[str, float]:
        """Plasticity diagnostics (`plasticity/*` tags) on a replay batch; cheap, no gradient step."""

    def state_dict(self) -> dict[str, Any]:
        """Everything for exact resume: networks, targets, optimisers, temperature, normaliser,
        the init snapshot used by resets, and any RNG the agent owns."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _save(value: Any) -> Any:
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _save(item) for key, item in value.items()}
    return value.state_dict() if hasattr(value, "state_dict") else value


def _load(current: Any, saved: Any, device: torch.device) -> Any:
    """Load saved into current in place where it holds state (modules, optimisers, generators, tensors
    that optimisers reference); return the value to assign otherwise."""
    if isinstance(current, np.random.Generator):
        current.bit_generator.state = saved
    elif isinstance(current, torch.Tensor):
        with torch.no_grad():
            current.copy_(saved)  # in place: an optimiser may hold it (SAC's log_alpha)
    elif hasattr(current, "load_state_dict"):
        current.load_state_dict(saved)
    elif isinstance(current, dict) and any(hasattr(v, "load_state_dict") for v in current.values()):
        for key, item in current.items():
            item.load_state_dict(saved[key])
    elif isinstance(saved, dict):
        return {key: v.to(device) if isinstance(v, torch.Tensor) else v for key, v in saved.items()}
    else:
        return type(current)(saved)
    return current


class AgentBase:
    """What SAC and DQN share: state declared once, generic save/load, and interventions from fire.registry.

    A subclass declares
      CONFIG: its typed config (a frozen dataclass built from agent.*);
      NETWORKS: the networks interventions touch;
      STATE: the attributes that make its state (modules, optimisers, snapshots, generators, counters);
      PROVIDES: what it gives interventions (fire.registry.CAPABILITIES), which decides those it supports;
      REINIT_DEFAULTS: its paper defaults for the options left null (reset_optimizer, reset_linear, ...);
    and implements intervention_networks() (which networks an intervention touches) and
    after_intervention() (targets re-synced, optimisers and temperature reset).
    """

    CONFIG: type  # the frozen dataclass of its agent.* keys (fire.options fields: doc, bounds)
    STATE: tuple[str, ...] = ()
    # Keys checkpoints written before update() took its counters hold; the loop's counters replace them.
    RETIRED_STATE = ("updates", "env_steps")
    NETWORKS: tuple[str, ...] = ()  # the names intervention_networks() gives, in its order
    PROVIDES: frozenset[str] = frozenset()
    REINIT_DEFAULTS: Mapping[str, Any] = {}
    device: torch.device

    @classmethod
    def config_from(cls, cfg: Mapping[str, Any]) -> Any:
        """The typed config from the composed agent.* keys (`name` is the loop's); ValueError naming the key."""
        return fire.options.build(cls.CONFIG, {k: v for k, v in cfg.items() if k != "name"}, "agent")

    def state_dict(self) -> dict[str, Any]:
        return {name: _save(getattr(self, name)) for name in self.STATE}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        unknown = sorted(set(state) - set(self.STATE) - set(self.RETIRED_STATE))
        missing = sorted(set(self.STATE) - set(state))
        if unknown or missing:
            raise ValueError(f"{type(self).__name__} checkpoint: unknown keys {unknown}, missing keys {missing}; "
                             f"expected {', '.join(self.STATE)}")
        self.prepare_load(state)
        for name in self.STATE:
            setattr(self, name, _load(getattr(self, name), state[name], self.device))

    def prepare_load(self, state: Mapping[str, Any]) -> None:
        """Give the agent the saved structure (e.g. an injected head) before values are loaded."""

    @classmethod
    def reinit_options(cls, name: str, options: Mapping[str, Any], agent: str | None = None) -> fire.registry.Options:
        """The typed options of intervention `name` for this agent (null = its default); ValueError naming the
        key for an intervention it cannot run or a bad option. loop.config calls it at start-up."""
        return fire.registry.options_for(name, options, agent=agent or cls.__name__.lower(), provides=cls.PROVIDES,
                                         defaults=cls.REINIT_DEFAULTS, networks=cls.NETWORKS)

    def intervention_networks(self, batch: Batch | None) -> list[fire.registry.Network]:
        raise NotImplementedError

    def after_intervention(self, options: fire.registry.Options, *, replaced_modules: bool) -> None:
        raise NotImplementedError

    def reinit(self, name: str, options: Mapping[str, Any], batch: Batch | None) -> dict[str, fire.Report]:
        """Apply intervention `name` with `options` (keys of its fire.registry options; null/absent = the
        default) to every network of intervention_networks(), then after_intervention().

        Returns {network name: fire.Report} for the networks it changed; `batch` is a replay sample for
        interventions that need one (ReDo). ValueError, naming the key, for what this agent cannot run.
        """
        typed = self.reinit_options(name, options)
        entry = fire.registry.INTERVENTIONS[name]
        reports = {}
        for network in self.intervention_networks(batch if entry.needs_batch else None):
            report = entry.apply(network, typed)
            if report is not None:
                reports[network.name] = report
        self.after_intervention(typed, replaced_modules=entry.replaces_modules)
        return reports
