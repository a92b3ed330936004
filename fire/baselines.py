"""The interventions FIRE is compared with (spec section 3), with fire_'s call shape: in place, -> Report.

All take the InitSnapshot captured at construction (theta_0) where they need one, change parameters with
copy_/in-place ops under no_grad (optimisers keep their references) and report per parameter.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from fire._hooks import record_outputs
from fire._select import OwnedParameter, Selector, owned_parameters, require_nonempty, select_modules
from fire.diagnostics import ACTIVATIONS, dfi, dormant_mask, sfe
from fire.report import LayerReport, Report
from fire.snapshot import InitSnapshot

NOISE_KINDS = ("init", "fresh")
REDO_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _dfi_or_nan(t: Tensor) -> float:
    return dfi(t) if t.ndim >= 2 else math.nan


def _apply(
    method: str, owned: list[OwnedParameter], new_value: Callable[[OwnedParameter], Tensor], action: str
) -> Report:
    """Overwrite each parameter with new_value(owned) and record SFE/DfI/time."""
    report = Report(method)
    for o in owned:
        start = time.perf_counter()
        new = new_value(o)
        seconds = time.perf_counter() - start
        before_dfi = _dfi_or_nan(o.param)
        layer_sfe = sfe(o.param, new)
        o.param.copy_(new)
        tied = f" (tied: {', '.join(o.aliases)})" if o.aliases else ""
        report.layers.append(
            LayerReport(
                o.name,
                tuple(o.param.shape),
                action + tied,
                layer_sfe,
                before_dfi,
                _dfi_or_nan(o.param),
                seconds,
            )
        )
    return report


def _init_value(snapshot: InitSnapshot, name: str, like: Tensor) -> Tensor:
    if name not in snapshot:
        raise ValueError(f"snapshot has no entry {name!r}: was it captured from this module?")
    return snapshot[name].to(device=like.device, dtype=like.dtype)


def _selected_parameters(
    module: nn.Module, include: Selector, exclude: Selector, function: str
) -> list[OwnedParameter]:
    modules = select_modules(module, include, exclude, lambda _n, _m: True)
    owned = list(owned_parameters(modules))
    require_nonempty(owned, function)
    return owned


@torch.no_grad()
def reset_(
    module: nn.Module,
    snapshot: InitSnapshot,
    *,
    include: Selector = None,
    exclude: Selector = None,
    buffers: bool = False,
) -> Report:
    """Full reset: parameters owned by the selected modules (default: all) <- theta_0.

    buffers=True also restores those modules' buffers (BatchNorm running statistics), as the vision
    code's full reset does; buffers are not in the report.
    """
    modules = select_modules(module, include, exclude, lambda _n, _m: True)
    owned = list(owned_parameters(modules))
    require_nonempty(owned, "reset_")
    report = _apply("reset", owned, lambda o: _init_value(snapshot, o.name, o.param), "reset")
    if buffers:
        for module_name, m in modules:
            for attr, buffer in m.named_buffers(recurse=False):
                name = f"{module_name}.{attr}" if module_name else attr
                buffer.copy_(_init_value(snapshot, name, buffer))
    return report


def _fresh_init_draw(module: nn.Module, generator: torch.Generator | None,
                     init: Callable[[nn.Module], None] | None = None) -> dict[str, Tensor]:
    """{qualified parameter name: value} from a scratch copy of module re-initialised by init(submodule)
    (default: each submodule's own reset_parameters()); seeded from generator without touching the global
    RNG."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    scratch = copy.deepcopy(module)
    lacking = set()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, m in scratch.named_modules():
            if any(True for _ in m.parameters(recurse=False)):
                if init is not None:
                    init(m)
                elif hasattr(m, "reset_parameters"):
                    m.reset_parameters()
                else:
                    lacking.add(name or "<root>")
    draws = dict(scratch.named_parameters(remove_duplicate=False))
    for name in lacking:
        prefix = "" if name == "<root>" else f"{name}."
        for attr in list(draws):
            if attr.startswith(prefix) and "." not in attr[len(prefix) :]:
                draws.pop(attr)
    return draws


@torch.no_grad()
def shrink_perturb_(
    module: nn.Module,
    snapshot: InitSnapshot,
    *,
    shrink: float = 0.8,
    noise: str = "init",
    noise_scale: float = 0.01,
    include: Selector = None,
    exclude: Selector = None,
    generator: torch.Generator | None = None,
) -> Report:
    """Shrink & perturb on the parameters of the selected modules (default all; buffers untouched).

    noise="init" (what the FIRE code runs, spec section 3): theta <- (1 - shrink) theta + shrink theta_0,
    an interpolation to the saved initial parameters; nothing random is drawn.
    noise="fresh" (Ash & Adams 2020): theta <- (1 - shrink) theta + noise_scale * eps, where eps for a
    parameter is a fresh draw of that parameter's default initialisation: a deep copy of module has
    reset_parameters() called on every submodule owning parameters (so eps ~ kaiming-uniform for
    Linear/Conv weights, U(+-1/sqrt(fan_in)) for their biases, ones/zeros for norm layers). The draw is
    seeded from `generator` (global RNG when None) inside fork_rng, so the global RNG state is unchanged
    when a generator is given. The snapshot is unused; a parameter whose owner has no reset_parameters
    raises ValueError. Cost: one temporary copy of module.
    """
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise={noise!r} is not one of {NOISE_KINDS}")
    if not 0.0 <= shrink <= 1.0:
        raise ValueError(f"shrink must be in [0, 1], got {shrink}")
    owned = _selected_parameters(module, include, exclude, "shrink_perturb_")
    if noise == "init":
        return _apply(
            "shrink_perturb[init]",
            owned,
            lambda o: (1.0 - shrink) * o.param + shrink * _init_value(snapshot, o.name, o.param),
            f"shrink {shrink} to init",
        )
    draws = _fresh_init_draw(module, generator)
    missing = [o.name for o in owned if o.name not in draws]
    if missing:
        raise ValueError(
            f"noise='fresh': the modules owning {missing} have no reset_parameters(); exclude them"
        )
    return _apply(
        "shrink_perturb[fresh]",
        owned,
        lambda o: (1.0 - shrink) * o.param + noise_scale * draws[o.name].to(o.param.dtype),
        f"shrink {shrink}, noise {noise_scale}",
    )


@torch.no_grad()
def head_reset_(module: nn.Module, snapshot: InitSnapshot, layers: Sequence[str]) -> Report:
    """Reset every parameter inside the named submodules (and their children) to theta_0."""
    if isinstance(layers, str):
        layers = [layers]
    names = dict(module.named_modules())
    unknown = [name for name in layers if name not in names]
    if unknown:
        raise ValueError(f"layers: no submodule named {unknown}; choose from {sorted(names)}")

    def inside(name: str, _m: nn.Module) -> bool:
        return any(name == layer or name.startswith(f"{layer}.") for layer in layers)

    report = reset_(module, snapshot, include=inside)
    report.method = "head_reset"
    return report


def _redo_chain(module: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """[(layer name, layer, name of the activation module after it)] for the Linear/ConvNd layers in
    registration order, each followed (before the next layer) by an activation module."""
    chain: list[tuple[str, nn.Module, str | None]] = []
    for name, m in module.named_modules():
        if isinstance(m, REDO_LAYERS):
            if getattr(m, "groups", 1) != 1:
                raise ValueError(f"redo_: grouped convolution {name!r} is not supported")
            chain.append((name, m, None))
        elif isinstance(m, ACTIVATIONS) and chain and chain[-1][2] is None:
            chain[-1] = (chain[-1][0], chain[-1][1], name)
        elif chain and any(True for _ in m.parameters(recurse=False)):
            raise ValueError(
                f"redo_: parametric module {name!r} ({type(m).__name__}) between layers is not supported; "
                "ReDo needs a plain stack Linear/Conv -> activation -> ... -> output layer"
            )
    if len(chain) < 2:
        raise ValueError("redo_: needs at least one hidden Linear/Conv layer before the output layer")
    for (name, layer, act), (_, next_layer, _) in zip(chain[:-1], chain[1:], strict=True):
        if act is None:
            raise ValueError(f"redo_: hidden layer {name!r} has no activation module after it (functional?)")
        units, fan_in = layer.weight.shape[0], next_layer.weight.shape[1]
        flattened = isinstance(layer, REDO_LAYERS[1:]) and isinstance(next_layer, nn.Linear)
        if fan_in != units and not (flattened and fan_in % units == 0):
            raise ValueError(f"redo_: {name!r} has {units} units but the next layer takes {fan_in} inputs")
    return chain


def _fan_in_columns(next_layer: nn.Module, mask: Tensor) -> Tensor:
    """Bool mask over next_layer's inputs (weight dim 1) fed by the masked units; a conv -> Linear flatten
    is channel-major (C, *space), so each channel's mask repeats over its spatial positions."""
    return mask.repeat_interleave(next_layer.weight.shape[1] // mask.numel())


def _zero_adam_moments(optimizer: torch.optim.Optimizer | None, param: Tensor, index: tuple) -> None:
    if optimizer is None:
        return
    state = optimizer.state.get(param, {})
    for key in ("exp_avg", "exp_avg_sq"):
        if key in state:
            state[key][index] = 0.0


@torch.no_grad()
def redo_(
    module: nn.Module,
    inputs: Tensor | tuple,
    *,
    tau: float = 0.1,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    init: Callable[[nn.Module], None] | None = None,
) -> Report:
    """ReDo (Sokar et al. 2023): recycle the tau-dormant units of every hidden layer.

    Supported structure (ValueError otherwise): module's Linear/Conv1d-3d layers, in registration order,
    form a chain where each layer feeds the next, each hidden layer is followed by an activation module
    (nn.ReLU, ...; nothing parametric in between), and the last layer is the output layer. A conv layer
    may feed a Linear through a channel-major flatten (nn.Flatten). nn.Sequential stacks such as the
    Nature CNN and MLP critics fit.

    tau = 0.1 by default: the threshold the FIRE authors' SAC metrics code reports as "dormant" (spec
    fire.md 2.2); the ReDo paper's Atari setting is 0.025. Scores come from the activation module's output
    on module(*inputs) (eval mode; spec 2.2). For every
    hidden layer, including the last one (the vision code skips it; we do not), the dormant units get
    fresh incoming weights and bias from the network's own initialiser, as in Sokar et al. 2023: `init`
    re-initialises a copy of the layer in place (e.g. Xavier-uniform weights, zero biases); without it,
    the layer's reset_parameters() (torch's default init). Draws are seeded from generator. The dormant
    units' outgoing weights in the next layer are set to 0, and, if optimizer is given, Adam's exp_avg and
    exp_avg_sq are zeroed at exactly those entries (the step counter is left alone). The output layer's
    units are never reset. Layers are processed input to output, so a recycled unit whose own incoming
    row is re-drawn keeps that whole fresh row, including the columns of recycled units below it.
    """
    chain = _redo_chain(module)
    hidden = chain[:-1]
    activations = record_outputs(module, inputs, [act for _n, _l, act in hidden], eval_mode=True)
    # Every parameter ReDo may touch, by qualified name, with its value before and what happened to it.
    touched: dict[str, tuple[Tensor, Tensor, list[str]]] = {}

    def note(name: str, param: Tensor, what: str) -> None:
        touched.setdefault(name, (param, param.clone(), []))[2].append(what)

    start = time.perf_counter()
    for (name, layer, act), (next_name, next_layer, _) in zip(hidden, chain[1:], strict=True):
        mask = dormant_mask(activations[act], tau).to(layer.weight.device)
        dormant = int(mask.sum())
        note(f"{name}.weight", layer.weight, f"{dormant}/{mask.numel()} dormant")
        if not dormant:
            continue
        fresh = _fresh_init_draw(layer, generator, init)
        layer.weight[mask] = fresh["weight"][mask].to(layer.weight.dtype)
        _zero_adam_moments(optimizer, layer.weight, (mask,))
        if layer.bias is not None:
            note(f"{name}.bias", layer.bias, f"{dormant} reset")
            layer.bias[mask] = fresh["bias"][mask].to(layer.bias.dtype)
            _zero_adam_moments(optimizer, layer.bias, (mask,))
        columns = _fan_in_columns(next_layer, mask)
        note(f"{next_name}.weight", next_layer.weight, f"{dormant} outgoing zeroed")
        next_layer.weight[:, columns] = 0.0
        _zero_adam_moments(optimizer, next_layer.weight, (slice(None), columns))
    seconds = time.perf_counter() - start
    report = Report("redo")
    for name, (param, old, notes) in touched.items():
        report.layers.append(
            LayerReport(
                name,
                tuple(param.shape),
                "redo: " + ", ".join(notes),
                sfe(old, param),
                _dfi_or_nan(old),
                _dfi_or_nan(param),
                seconds / len(touched),
            )
        )
    return report


class InjectedHead(nn.Module):
    """Plasticity injection head: old(x) + new(x) - new_frozen(x); equal to old(x) at injection.

    old: the trained head, frozen. new: a trainable copy of the head at theta_0. new_frozen: a frozen
    copy of the head at theta_0 that cancels new at injection.
    """

    def __init__(self, old: nn.Module, initial: nn.Module):
        super().__init__()
        self.old = old.requires_grad_(False)
        self.new = copy.deepcopy(initial).requires_grad_(True)
        self.new_frozen = copy.deepcopy(initial).requires_grad_(False)

    def forward(self, *args, **kwargs):
        return self.old(*args, **kwargs) + self.new(*args, **kwargs) - self.new_frozen(*args, **kwargs)


@torch.no_grad()
def inject_plasticity_(model: nn.Module, snapshot: InitSnapshot, head: str) -> Report:
    """Plasticity injection (Nikishin et al. 2023): replace submodule `head` by an InjectedHead.

    The new trainable branch starts at the head's theta_0 from snapshot, so the model's outputs are
    unchanged and the trainable parameter count is unchanged (the old head is frozen). The caller must
    rebuild its optimiser (the head's parameters are now different tensors). Report entries compare
    each trainable head parameter before (trained) and after (theta_0).
    """
    modules = dict(model.named_modules())
    if head not in modules or head == "":
        raise ValueError(f"head: no submodule named {head!r}; choose from {sorted(n for n in modules if n)}")
    old = modules[head]
    parent_name, _, attr = head.rpartition(".")
    parent = modules[parent_name]
    start = time.perf_counter()
    initial = copy.deepcopy(old)
    for name, t in [*initial.named_parameters(), *initial.named_buffers()]:
        t.copy_(_init_value(snapshot, f"{head}.{name}", t))
    injected = InjectedHead(old, initial)
    setattr(parent, attr, injected)
    seconds = time.perf_counter() - start
    report = Report("plasticity_injection")
    for name, trained in old.named_parameters():
        fresh = injected.new.get_parameter(name)
        report.layers.append(
            LayerReport(
                f"{head}.{name}",
                tuple(trained.shape),
                "inject: trained frozen, trainable copy of theta_0",
                sfe(trained, fresh),
                _dfi_or_nan(trained),
                _dfi_or_nan(fresh),
                seconds,
            )
        )
        seconds = 0.0
    return report
