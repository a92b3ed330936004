"""The compiled H1 task models, built once per process and shared by every env of a task.

Two models per task:

* the physics model, compiled with MuJoCo's `discardvisual`: no visual geoms, and no meshes that
  only visual geoms use. Contacts, masses and every trajectory are bit-identical to the full model's
  (tests/envs/test_h1_env.py checks it), because visual geoms collide with nothing and carry no mass;
* the render model (visual geoms and meshes, offscreen buffer at least width x height), built on the
  first frame an env is asked for.

A model is shared, not copied: an evaluation env beside the training envs adds only its MjData
(~15 MB) instead of another model. Shared models are read-only (no env edits its model). A model is
freed when its last env is (weak references), except the physics model compiled last, which stays: a
process that closes its env and makes another of the same task (train.py checks the config with one env,
then builds the run's) would otherwise compile it twice, and a compile briefly needs ~100 MB more.

Memory: MuJoCo keeps the decoded STL meshes of every compile in a process-wide asset cache (~100 MB
for the H1) to speed up recompiling; we compile each task once, so we compile with that cache off
(its capacity is 0 during our compile, which also empties it, and restored after).
The compiler's scratch memory is handed back to the OS afterwards (glibc keeps freed heap otherwise),
which takes a bare env process from ~310 to ~115 MB.
"""

from __future__ import annotations

import contextlib
import ctypes
import weakref
from collections.abc import Iterator

import mujoco

from envs.h1.robot import build_robot
from envs.h1.task import TASKS

_PHYSICS: weakref.WeakValueDictionary[str, mujoco.MjModel] = weakref.WeakValueDictionary()
_RENDER: weakref.WeakValueDictionary[tuple[str, int, int], mujoco.MjModel] = weakref.WeakValueDictionary()
_LAST_PHYSICS: list[mujoco.MjModel] = []  # a strong reference to the last physics model compiled


def physics_model(task: str) -> mujoco.MjModel:
    """The task's physics model (no visual geoms), shared and read-only."""
    model = _PHYSICS.get(task)
    if model is None:
        model = _PHYSICS[task] = _compile(task, discard_visual=True)
        _LAST_PHYSICS[:] = [model]
    return model


def render_model(task: str, width: int, height: int) -> mujoco.MjModel:
    """The task's model with its visual geoms and an offscreen buffer of at least width x height."""
    key = (task, width, height)
    model = _RENDER.get(key)
    if model is None:
        model = _RENDER[key] = _compile(task, discard_visual=False, width=width, height=height)
    return model


def _compile(task: str, *, discard_visual: bool, width: int = 0, height: int = 0) -> mujoco.MjModel:
    spec = build_robot()
    TASKS[task]().add_scene(spec)
    spec.compiler.discardvisual = discard_visual
    spec.visual.global_.offwidth = max(width, spec.visual.global_.offwidth)
    spec.visual.global_.offheight = max(height, spec.visual.global_.offheight)
    with _asset_cache_off():
        model = spec.compile()
    del spec
    _return_free_heap()
    return model


@contextlib.contextmanager
def _asset_cache_off() -> Iterator[None]:
    cache = mujoco.mj_getCache()
    capacity = mujoco.mj_getCacheCapacity(cache)
    mujoco.mj_setCacheCapacity(cache, 0)
    try:
        yield
    finally:
        mujoco.mj_setCacheCapacity(cache, capacity)


def _return_free_heap() -> None:
    """glibc's malloc_trim: give freed heap pages back to the OS (a no-op without glibc)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)
