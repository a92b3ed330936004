"""Pick MuJoCo's OpenGL backend for offscreen rendering before MuJoCo is imported.

MuJoCo reads MUJOCO_GL once, when it is first imported, and without a display its default (GLFW)
cannot render. So, when there is no display and the user set no MUJOCO_GL, we choose EGL (GPU, or
Mesa's software renderer), else OSMesa (CPU), whichever library the system has. `import envs` runs
this first; it cannot help a process that imported mujoco before envs.
"""

from __future__ import annotations

import ctypes.util
import os


def offscreen_backend() -> str | None:
    """The MUJOCO_GL value to use without a display: egl, osmesa, or None (neither library found)."""
    for backend, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if ctypes.util.find_library(library) is not None:
            return backend
    return None


def select_backend() -> None:
    if "DISPLAY" in os.environ or "WAYLAND_DISPLAY" in os.environ or "MUJOCO_GL" in os.environ:
        return
    backend = offscreen_backend()
    if backend is not None:
        os.environ["MUJOCO_GL"] = backend


select_backend()
