"""Capture and restore a running gymnasium env's full state, so a checkpoint can resume mid-episode.

Plain pickling is not enough: gymnasium's MuJoCo envs are `EzPickle`, which pickles constructor
arguments and rebuilds a fresh env. So we save every wrapper's attributes, the base env's
attributes, and every `MjData` whole. The whole of it, not just the integration state: rewards
often read quantities the last substep left behind (xpos before a step, contact forces), and
`mj_forward` on a restored state would recompute them from the new state instead.
The model is left as built: envs must not edit it after construction.
"""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import mujoco


def _attributes(obj: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    """The instance attributes that carry state: everything but sub-envs, models and renderers."""
    kept = {}
    for key, value in vars(obj).items():
        if key in skip or isinstance(value, mujoco.MjModel | mujoco.MjData) or "render" in key.lower():
            continue
        kept[key] = value
    return kept


def _simulations(env: Any) -> dict[str, mujoco.MjData]:
    return {k: v for k, v in vars(env).items() if isinstance(v, mujoco.MjData)}


def get_state(env: gym.Env) -> bytes:
    layers, node = [], env
    while isinstance(node, gym.Wrapper):
        layers.append(_attributes(node, skip=("env",)))
        node = node.env
    return pickle.dumps({"wrappers": layers, "base": _attributes(node, skip=()), "mujoco": _simulations(node)})


def set_state(env: gym.Env, blob: bytes) -> None:
    saved = pickle.loads(blob)
    node, layers = env, iter(saved["wrappers"])
    while isinstance(node, gym.Wrapper):
        vars(node).update(next(layers))
        node = node.env
    vars(node).update(saved["base"])
    model = next((v for v in vars(node).values() if isinstance(v, mujoco.MjModel)), None)
    for name, data in _simulations(node).items():
        # Copy into the env's own MjData: renderers and task code hold references to it.
        mujoco.mj_copyData(data, model, saved["mujoco"][name])


class Checkpointable(gym.Wrapper):
    """Outermost wrapper exposing `state_blob`, read and written through the vector env's
    get_attr/set_attr, so the same code checkpoints sync and async (subprocess) vector envs."""

    @property
    def state_blob(self) -> bytes:
        return get_state(self.env)

    @state_blob.setter
    def state_blob(self, blob: bytes) -> None:
        set_state(self.env, blob)
