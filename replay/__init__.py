"""Replay buffers: uniform (vector observations) and frame-efficient Atari replay."""

from replay.base import Batch, Replay

__all__ = ["Batch", "Replay"]
