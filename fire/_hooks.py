"""Read submodule outputs during one forward pass (forward hooks, removed afterwards)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def as_args(inputs: Tensor | tuple) -> tuple:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def record_outputs(
    root: nn.Module, inputs: Tensor | tuple, layers: Sequence[str], *, eval_mode: bool
) -> dict[str, Tensor]:
    """Run root(*inputs) without grad and return {layer name: detached output} for the named submodules.

    A submodule called k > 1 times in the forward yields "<name>#1", "<name>#2", ... for the later calls.
    eval_mode switches every submodule to eval for the pass and restores each training flag after.
    """
    modules = dict(root.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"layers: no submodule named {missing}; choose from {sorted(modules)}")
    outputs: dict[str, Tensor] = {}

    def hook_for(name: str):
        def hook(_module, _args, output):
            if not isinstance(output, Tensor):
                raise ValueError(f"layers: output of {name!r} is {type(output).__name__}, not a Tensor")
            calls = sum(1 for key in outputs if key == name or key.startswith(f"{name}#"))
            outputs[f"{name}#{calls}" if calls else name] = output.detach()

        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    training = {m: m.training for m in root.modules()}
    try:
        if eval_mode:
            root.eval()
        with torch.no_grad():
            root(*as_args(inputs))
    finally:
        for handle in handles:
            handle.remove()
        for m, flag in training.items():
            m.train(flag)
    return outputs
