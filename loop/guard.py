"""The non-finite guard: a NaN or inf stops the run where it first appears, named with its source and env step."""

from __future__ import annotations

import numpy as np


class NonFiniteError(RuntimeError):
    """A NaN or inf reached replay, a decision, a loss or an evaluation; the message names it and the env step."""


def check_finite(values: np.ndarray, what: str, source: str, env_steps: int) -> None:
    """Raise NonFiniteError if `values` (one row per env) hold a NaN or inf: `non-finite <what> from <source>
    [rows] at env step N`. Integer arrays (Atari frames, discrete actions) cannot hold either."""
    values = np.asarray(values)
    if values.dtype.kind not in "fc" or np.isfinite(values).all():
        return
    rows = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1)).tolist()
    raise NonFiniteError(f"non-finite {what} from {source} {rows} at env step {env_steps}")
