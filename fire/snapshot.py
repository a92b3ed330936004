"""The initial parameters theta_0 that resets, shrink & perturb and plasticity injection go back to."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class InitSnapshot:
    """Detached copies of every parameter and buffer of a module, keyed by qualified name.

    Take it right after construction: `snapshot = InitSnapshot.capture(model)`. A Parameter (or buffer)
    tied under several names is copied once and stays tied in the snapshot.
    """

    def __init__(self, parameters: dict[str, Tensor], buffers: dict[str, Tensor]):
        self.parameters = parameters
        self.buffers = buffers

    @classmethod
    @torch.no_grad()
    def capture(cls, module: nn.Module) -> InitSnapshot:
        copies: dict[int, Tensor] = {}

        def copy(t: Tensor) -> Tensor:
            if id(t) not in copies:
                copies[id(t)] = t.detach().clone()
            return copies[id(t)]

        return cls(
            {name: copy(p) for name, p in module.named_parameters(remove_duplicate=False)},
            {name: copy(b) for name, b in module.named_buffers(remove_duplicate=False)},
        )

    def __getitem__(self, name: str) -> Tensor:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.buffers:
            return self.buffers[name]
        raise KeyError(f"InitSnapshot has no parameter or buffer named {name!r}")

    def __contains__(self, name: str) -> bool:
        return name in self.parameters or name in self.buffers

    def to(self, device: torch.device | str) -> InitSnapshot:
        """Move every tensor to device in place (ties kept); returns self, like nn.Module.to."""
        moved: dict[int, Tensor] = {}

        def move(t: Tensor) -> Tensor:
            return moved.setdefault(id(t), t.to(device))

        self.parameters = {name: move(t) for name, t in self.parameters.items()}
        self.buffers = {name: move(t) for name, t in self.buffers.items()}
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"parameters": dict(self.parameters), "buffers": dict(self.buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"parameters", "buffers"} - set(state)
        if missing:
            raise ValueError(f"InitSnapshot.load_state_dict: state lacks keys {sorted(missing)}")
        self.parameters = dict(state["parameters"])
        self.buffers = dict(state["buffers"])
