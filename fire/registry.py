"""The interventions a training loop can schedule, one entry each: function, typed options, needs.

An entry names the function in `fire` that does the work (adapted to one agent network), its options
(a frozen dataclass: types, defaults, bounds, one doc line per key), whether it needs a batch of inputs,
and what an agent must provide for it. configs/reinit/<name>.yaml holds the same keys with the same
defaults. Adding an intervention is its function, an entry here and that YAML file:

    >>> import torch
    >>> from dataclasses import dataclass
    >>> from fire.options import option
    >>> @dataclass(frozen=True)
    ... class ScaleOptions(Options):
    ...     factor: float = option(0.5, "weights are multiplied by this", gt=0.0)
    >>> @torch.no_grad()
    ... def scale(net, options):
    ...     for p in net.module.parameters():
    ...         p.mul_(options.factor)
    ...     return Report("scale")
    >>> register(Intervention("scale", scale, ScaleOptions, doc="multiply every parameter by a factor"))
    >>> layer = torch.nn.Linear(2, 2)
    >>> net = Network("critic", layer, InitSnapshot.capture(layer))
    >>> options = options_for("scale", {"factor": 0.25}, agent="test", provides=(), defaults={})
    >>> options.factor
    0.25
    >>> INTERVENTIONS["scale"].apply(net, options).method
    'scale'
    >>> options_for("scale", {"factor": -1}, agent="test", provides=(), defaults={})
    Traceback (most recent call last):
    ...
    ValueError: reinit.factor=-1 must be a number > 0.0
    >>> del INTERVENTIONS["scale"]

Agents declare, once, which networks an intervention touches (their `Network`s), what they provide
(`provides`), the paper defaults of the options left null (`defaults`) and what happens around an
intervention (targets re-synced, optimisers and temperature reset): see agents/base.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from fire.baselines import InjectedHead, head_reset_, inject_plasticity_, redo_, reset_, shrink_perturb_
from fire.options import build, option
from fire.reinit import CONVS, fire_
from fire.report import Report
from fire.snapshot import InitSnapshot

# What an agent can provide to interventions (Intervention.requires, an agent's `provides`):
CAPABILITIES = {
    "heads": "names each network's output layers (Network.heads)",
    "inputs": "feeds each network a replay batch (Network.inputs) and its networks are plain "
              "Linear/Conv -> activation chains",
    "replace_modules": "rebuilds its optimisers and target networks after a submodule is replaced",
}


@dataclass(frozen=True)
class Network:
    """One network an agent exposes to interventions, with what the interventions may need of it."""

    name: str
    module: nn.Module
    snapshot: InitSnapshot  # theta_0, taken at construction
    heads: tuple[str, ...] = ()  # output layers, relative to module (head_reset's default, pi's head)
    optimizer: Any = None  # the optimiser of module's parameters (ReDo zeroes recycled units' moments)
    inputs: tuple | None = None  # module(*inputs) on a replay batch, for needs_batch interventions
    init_layer: Callable[[nn.Module], None] | None = None  # the network's own initialiser of one layer


@dataclass(frozen=True)
class Options:
    """Keys of every intervention: what happens around it. Null = the agent's paper default."""

    reset_optimizer: bool | None = option(None, "fresh optimiser state afterwards; null = the agent's default "
                                                "(SAC: true, DQN: false, as in the paper's code)")
    reset_temperature: bool | None = option(None, "SAC: temperature back to agent.initial_temperature; "
                                                  "null = true (the paper's SAC code)")


@dataclass(frozen=True)
class FireOptions(Options):
    iterations: int = option(10, "Newton-Schulz steps", ge=1)
    polar: Literal["newton_schulz", "svd"] = option("newton_schulz", "polar factor: Newton-Schulz or exact SVD")
    conv_scale: Literal["official", "rms"] = option(
        "official", "conv taps scaled sqrt(out/in)/(kh*kw) (the authors' code) or /sqrt(kh*kw) (gain ~1)")
    reset_linear: bool | None = option(None, "Linear layers back to theta_0 and only convolutions orthogonalised "
                                             "(the paper's DQN hybrid); null = the agent's default")


@dataclass(frozen=True)
class ResetOptions(Options):
    pass


@dataclass(frozen=True)
class ShrinkPerturbOptions(Options):
    shrink: float = option(0.8, "theta <- (1 - shrink) theta + shrink theta_0 (noise=init)", ge=0.0, le=1.0)
    noise: Literal["init", "fresh"] = option("init", "init: interpolate to theta_0 (the paper's code); "
                                                     "fresh: Ash & Adams' fresh init noise")
    noise_scale: float = option(0.01, "noise=fresh: theta <- (1 - shrink) theta + noise_scale * draw", ge=0.0)
    reset_linear: bool | None = option(None, "Linear layers back to theta_0, S&P on convolutions only (SR-DQN); "
                                             "null = the agent's default")


@dataclass(frozen=True)
class HeadResetOptions(Options):
    layers: list[str] | None = option(None, "<network>.<module> names to reset, e.g. critic.members.0.head; "
                                            "null = the agent's heads")


@dataclass(frozen=True)
class RedoOptions(Options):
    tau: float = option(0.1, "dormancy threshold on normalised activity; 0.1 is what the FIRE authors' SAC code "
                             "counts as dormant (spec fire.md 2.2), 0.025 the ReDo paper's Atari setting", ge=0.0)


@dataclass(frozen=True)
class InjectionOptions(Options):
    pass


@dataclass(frozen=True)
class Intervention:
    """A registry entry. apply(network, options) -> Report, or None when it leaves that network alone."""

    name: str
    apply: Callable[[Network, Any], Report | None]
    options: type = Options
    needs_batch: bool = False  # Network.inputs are filled from a replay batch
    requires: frozenset[str] = frozenset()  # keys of CAPABILITIES an agent must provide
    replaces_modules: bool = False  # the agent rebuilds optimisers and targets afterwards
    max_events: int | None = None  # how many times one run may apply it
    doc: str = ""


def _convs_then_linear_reset(net: Network, reset_linear: bool,
                             transform: Callable[[Any], Report]) -> Report:
    """transform(include=None) on the whole network, or with reset_linear transform on the convolutions only
    and every Linear layer back to theta_0 (the FIRE paper's DQN variants)."""
    if not reset_linear:
        return transform(None)
    reports = []
    if any(isinstance(m, CONVS) for m in net.module.modules()):
        reports.append(transform(list(CONVS)))
    reports.append(reset_(net.module, net.snapshot, include=[nn.Linear]))
    return Report.merge(*reports)


def _fire(net: Network, o: FireOptions) -> Report:
    return _convs_then_linear_reset(net, o.reset_linear, lambda include: fire_(
        net.module, iterations=o.iterations, polar=o.polar, conv_scale=o.conv_scale, include=include))


def _reset(net: Network, o: ResetOptions) -> Report:
    return reset_(net.module, net.snapshot)


def _shrink_perturb(net: Network, o: ShrinkPerturbOptions) -> Report:
    return _convs_then_linear_reset(net, o.reset_linear, lambda include: shrink_perturb_(
        net.module, net.snapshot, shrink=o.shrink, noise=o.noise, noise_scale=o.noise_scale, include=include))


def _head_reset(net: Network, o: HeadResetOptions) -> Report | None:
    prefix = f"{net.name}."
    layers = net.heads if o.layers is None else [name[len(prefix):] for name in o.layers if name.startswith(prefix)]
    return head_reset_(net.module, net.snapshot, list(layers)) if layers else None


def _redo(net: Network, o: RedoOptions) -> Report:
    return redo_(net.module, net.inputs, tau=o.tau, optimizer=net.optimizer, init=net.init_layer)


def _inject(net: Network, o: InjectionOptions) -> Report:
    (head,) = net.heads
    if isinstance(net.module.get_submodule(head), InjectedHead):
        raise ValueError(f"plasticity injection: {net.name}.{head} is already injected (pi applies once per run)")
    return inject_plasticity_(net.module, net.snapshot, head)


INTERVENTIONS: dict[str, Intervention] = {}


def register(intervention: Intervention) -> None:
    """Add an entry; its options class must derive from Options (the keys every intervention has)."""
    if not issubclass(intervention.options, Options):
        raise TypeError(f"{intervention.name}: options {intervention.options.__name__} must derive from Options")
    unknown = sorted(intervention.requires - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"{intervention.name}: requires {unknown}; allowed: {', '.join(CAPABILITIES)}")
    INTERVENTIONS[intervention.name] = intervention


for _entry in (
    Intervention("fire", _fire, FireOptions, doc="FIRE: weights <- scaled orthogonal polar factor (fire.fire_)"),
    Intervention("reset", _reset, ResetOptions, doc="full reset to theta_0 (fire.reset_)"),
    Intervention("snp", _shrink_perturb, ShrinkPerturbOptions, doc="shrink & perturb (fire.shrink_perturb_)"),
    Intervention("head_reset", _head_reset, HeadResetOptions, requires=frozenset({"heads"}),
                 doc="output layers to theta_0 (fire.head_reset_)"),
    Intervention("redo", _redo, RedoOptions, needs_batch=True, requires=frozenset({"inputs"}),
                 doc="ReDo: recycle dormant units (fire.redo_)"),
    Intervention("pi", _inject, InjectionOptions, requires=frozenset({"heads", "replace_modules"}),
                 replaces_modules=True, max_events=1,
                 doc="plasticity injection: frozen head + trainable copy of theta_0 (fire.inject_plasticity_)"),
):
    register(_entry)

# Options whose null means "the agent's paper default" (an agent's `defaults`); an agent without a default
# for one has nothing it acts on (DQN has no temperature), so a value there is refused.
AGENT_DEFAULTED = ("reset_optimizer", "reset_temperature", "reset_linear")


def supported(provides: Collection[str]) -> list[str]:
    """Names of the interventions an agent providing `provides` can run, in registry order."""
    return [name for name, entry in INTERVENTIONS.items() if entry.requires <= set(provides)]


def options_for(name: str, values: Mapping[str, Any], *, agent: str, provides: Collection[str],
                defaults: Mapping[str, Any], networks: Collection[str] = (), path: str = "reinit") -> Any:
    """The typed options of intervention `name` for one agent, agent defaults filled in for null keys.

    ValueError (one line naming the key and what is allowed) for an unknown intervention, one the agent
    cannot run, unknown keys, wrong types or out-of-range values, or a key the agent has nothing for.
    """
    if name not in INTERVENTIONS:
        raise ValueError(f"{path}.name={name!r} is unknown; allowed: none, {', '.join(INTERVENTIONS)}")
    entry = INTERVENTIONS[name]
    if not entry.requires <= set(provides):
        lacking = ", ".join(CAPABILITIES[c] for c in sorted(entry.requires - set(provides)))
        raise ValueError(f"{path}={name!r} is not available for agent={agent}; allowed: none, "
                         f"{', '.join(supported(provides))} ({name} needs an agent that {lacking})")
    options = build(entry.options, values, path)
    for layer in getattr(options, "layers", None) or ():
        if layer.partition(".")[0] not in networks or "." not in layer:
            raise ValueError(f"{path}.layers entry {layer!r} must be <network>.<module> with network one of "
                             f"{', '.join(networks)}")
    filled = {}
    for key in AGENT_DEFAULTED:
        if not hasattr(options, key):
            continue
        value = getattr(options, key)
        if key not in defaults:
            if value is not None:
                raise ValueError(f"{path}.{key}={value!r}: agent={agent} has nothing it applies to; allowed: null")
        elif value is None:
            filled[key] = defaults[key]
    return dataclasses.replace(options, **filled)
