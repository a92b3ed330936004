"""Across-seed statistics: bootstrap confidence intervals of a mean, and the interquartile mean.

Kept free of plotting and TensorBoard imports so that benchmarks and tests can use them cheaply.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.stats


def bootstrap_mean_ci(
    values: np.ndarray, confidence: float = 0.95, reps: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds with a percentile-bootstrap confidence interval, per column.

    values: (seeds,) or (seeds, points); NaN marks a point a seed did not reach and is ignored
    (each bootstrap sample averages the seeds present). Returns (mean, low, high), each of shape
    values.shape[1:]. With one seed, low == high == mean: one seed carries no spread.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[0] == 0:
        raise ValueError(f"values must be (seeds,) or (seeds, points) with seeds >= 1, got shape {values.shape}")
    with warnings.catch_warnings():
        # A bootstrap sample may hold only missing points at a column: its mean is NaN, not an error.
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        seeds = values.shape[0]
        rng = np.random.default_rng(seed)
        resampled = values[rng.integers(seeds, size=(reps, seeds))]  # (reps, seeds, *points)
        means = np.nanmean(resampled, axis=1)
        tail = 100 * (1 - confidence) / 2
        low, high = np.nanpercentile(means, [tail, 100 - tail], axis=0)
    return mean, low, high


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of all scores (25 % trimmed from each end),
    pooled over runs and tasks as in Agarwal et al. 2021 (rliable's aggregate_iqm)."""
    return float(scipy.stats.trim_mean(np.asarray(scores, dtype=np.float64), proportiontocut=0.25, axis=None))
