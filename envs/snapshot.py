"""Capture and restore a running gymnasium env's full state, so a checkpoint can resume mid-episode.

Plain pickling is not enough: gymnasium's MuJoCo envs are `EzPickle`, which pickles constructor
arguments and rebuilds a fresh env. So we save every wrapper's attributes, the base env's
attributes, and each `MjData` the env steps:

* through MuJoCo's state API (`mj_getState`) where the env declares `snapshot_physics`, the
  `mjtState` components that determine its future: the H1 tasks read nothing but what `mj_step`
  recomputes from MuJoCo's integration state, so a snapshot is a few KB;
* whole otherwise (its pickle carries the model too: ~50 MB for the H1's): gymnasium's MuJoCo
  tasks read quantities the last substep left behind before stepping (Humanoid's centre of mass
  from `xipos`), and `mj_forward` on a restored state would recompute them from the new state.

The model is left as built: envs must not edit it after construction. Renderers and their data
are not saved: the next frame is drawn from the restored state.
"""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np


def _attributes(obj: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    """The instance attributes that carry state: everything but sub-envs, models and renderers."""
    kept = {}
    for key, value in vars(obj).items():
        if key in skip or isinstance(value, mujoco.MjModel | mujoco.MjData) or "render" in key.lower():
            continue
        kept[key] = value
    return kept


def _simulations(env: Any) -> dict[str, mujoco.MjData]:
    """The MjData the env steps (a renderer's is rebuilt from them)."""
    return {k: v for k, v in vars(env).items() if isinstance(v, mujoco.MjData) and "render" not in k.lower()}


def _model(env: Any) -> mujoco.MjModel | None:
    return next((v for k, v in vars(env).items() if isinstance(v, mujoco.MjModel) and "render" not in k.lower()), None)


def _physics_state(model: mujoco.MjModel, data: mujoco.MjData, components: int) -> np.ndarray:
    state = np.empty(mujoco.mj_stateSize(model, components))
    mujoco.mj_getState(model, data, state, components)
    return state


def get_state(env: gym.Env) -> bytes:
    layers, node = [], env
    while isinstance(node, gym.Wrapper):
        layers.append(_attributes(node, skip=("env",)))
        node = node.env
    components = getattr(node, "snapshot_physics", None)
    simulations = _simulations(node)
    if components is not None:
        model = _model(node)
        simulations = {name: _physics_state(model, data, components) for name, data in simulations.items()}
    return pickle.dumps({"wrappers": layers, "base": _attributes(node, skip=()), "mujoco": simulations})


def set_state(env: gym.Env, blob: bytes) -> None:
    saved = pickle.loads(blob)
    node, layers = env, iter(saved["wrappers"])
    while isinstance(node, gym.Wrapper):
        vars(node).update(next(layers))
        node = node.env
    vars(node).update(saved["base"])
    model, components = _model(node), getattr(node, "snapshot_physics", None)
    for name, data in _simulations(node).items():
        # Into the env's own MjData: renderers and task code hold references to it.
        saved_data = saved["mujoco"][name]
        if components is None:
            mujoco.mj_copyData(data, model, saved_data)
            continue
        if isinstance(saved_data, mujoco.MjData):
            # A whole MjData saved before this env took integration-state snapshots; it may belong to
            # another compile of the same scene (the full model), hence its own model for the read.
            saved_data = _physics_state(saved_data.model, saved_data, components)
        mujoco.mj_setState(model, data, saved_data, components)
        # The derived quantities (poses, contacts) for anyone reading before the next step; mj_step
        # recomputes them from the state, so continuing does not depend on this.
        mujoco.mj_forward(model, data)


class Checkpointable(gym.Wrapper):
    """Outermost wrapper exposing `state_blob`, read and written through the vector env's
    get_attr/set_attr, so the same code checkpoints sync and async (subprocess) vector envs."""

    @property
    def state_blob(self) -> bytes:
        return get_state(self.env)

    @state_blob.setter
    def state_blob(self, blob: bytes) -> None:
        set_state(self.env, blob)
