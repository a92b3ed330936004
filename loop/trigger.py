"""Adaptive intervention trigger: apply `reinit.name` when a plasticity signal, measured online, crosses a threshold.

Every `reinit.check_every_env_steps` env steps (an exact env-step boundary, like every loop event) the
signal is measured on one replay batch; the intervention fires when the value is on the wrong side of
`reinit.threshold` and at least `reinit.min_gap_env_steps` env steps have passed since the last
intervention, scheduled or triggered (a scheduled one restores plasticity just as well).

Signals, both of the value network (SAC: the critic, DQN: the Q-network), whose targets move and whose
plasticity the literature finds lost first:

* `dfi`: the deviation from isometry sum ||W^T W - I||_F^2 over its layers (fire.diagnostics.dfi), the
  quantity FIRE itself drives to ~0 and whose growth the FIRE paper ties to lost plasticity. Weight-only
  (no forward pass). Unbounded and architecture-dependent, so it has no default threshold: a preset sets
  one between what healthy and degraded runs of its network reach. In the heavy-priming pilot (SAC on
  Hopper) it separated the two by 14x: 4.8M after priming vs 0.35M for the unprimed critic at 4k steps.
* `dormant`: the fraction of tau-dormant units (tau = 0.025, ReDo's score; Sokar et al. 2023) pooled over
  its feature layers on the checked batch; bounded in [0, 1], default threshold 0.2. In the same pilot it
  did NOT separate primed from unprimed critics (0.20 vs 0.21), so dfi is the signal of that preset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loop.schedule import EventSchedule


@dataclass(frozen=True)
class Signal:
    metric: str  # key in agent.diagnostics(), below plasticity/ (SAC adds the network: plasticity/critic/)
    fires_above: bool  # True: fire when value >= threshold; False: when value <= threshold
    default_threshold: float | None  # None: the threshold must be given (scale depends on the network)
    range: tuple[float, float]  # the values a threshold may take


SIGNALS: dict[str, Signal] = {
    "dfi": Signal(metric="dfi", fires_above=True, default_threshold=None, range=(0.0, float("inf"))),
    "dormant": Signal(metric="dormant_0.025", fires_above=True, default_threshold=0.2, range=(0.0, 1.0)),
}
VALUE_NETWORKS = ("critic",)  # SAC's value network; DQN's Q-network metrics carry no network prefix


def value_network_metric(diagnostics: Mapping[str, float], metric: str) -> float:
    """The value network's `metric` from agent.diagnostics(): plasticity/critic/<metric> or plasticity/<metric>."""
    for key in (*(f"plasticity/{network}/{metric}" for network in VALUE_NETWORKS), f"plasticity/{metric}"):
        if key in diagnostics:
            return float(diagnostics[key])
    raise KeyError(f"agent diagnostics have no value-network {metric!r}; keys: {sorted(diagnostics)}")


class Trigger:
    """When the adaptive intervention is checked and whether it fires (see the module docstring)."""

    def __init__(self, signal: str, threshold: float | None, min_gap_env_steps: int, check_every_env_steps: int):
        self.signal = signal
        self.spec = SIGNALS[signal]
        self.threshold = self.spec.default_threshold if threshold is None else float(threshold)
        self.min_gap_env_steps = int(min_gap_env_steps)
        self.checks = EventSchedule(check_every_env_steps)
        self.last_intervention: int | None = None  # env step of the last intervention of any kind

    def measure(self, diagnostics: Mapping[str, float]) -> float:
        return value_network_metric(diagnostics, self.spec.metric)

    def crossed(self, value: float) -> bool:
        return value >= self.threshold if self.spec.fires_above else value <= self.threshold

    def allowed(self, env_steps: int) -> bool:
        """True when the gap since the last intervention permits another at env_steps."""
        return self.last_intervention is None or env_steps - self.last_intervention >= self.min_gap_env_steps

    def state_dict(self) -> dict[str, Any]:
        return {"last_intervention": self.last_intervention}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.last_intervention = state["last_intervention"]
