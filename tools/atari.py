"""Atari aggregates across games: human-normalised scores (HNS), IQM / median / mean with stratified
bootstrap confidence intervals and performance profiles (rliable; Agarwal et al. 2021)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics

from envs.atari.scores import human_normalized_score

AGGREGATES = {"IQM": metrics.aggregate_iqm, "median": metrics.aggregate_median, "mean": metrics.aggregate_mean}


def add_hns(finals: pd.DataFrame) -> pd.DataFrame:
    """finals with an `hns` column: (score - random) / (human - random) of each run's `final` on its `game`."""
    out = finals.copy()
    out["hns"] = [human_normalized_score(game, score) for game, score in zip(out["game"], out["final"], strict=True)]
    return out


def hns_matrices(finals: pd.DataFrame) -> dict[str, np.ndarray]:
    """{method: HNS matrix (runs, games)} from per-run rows (columns method, game, seed, hns).

    Every method must cover the same games (else the aggregates would compare different suites).
    rliable needs as many runs per game as there are rows, so each method keeps, per game, its first
    runs in seed order up to the smallest per-game count (a warning says how many were left out).
    Games are columns in sorted order.
    """
    games = sorted(finals["game"].unique())
    matrices: dict[str, np.ndarray] = {}
    for method, rows in finals.groupby("method", sort=True):
        missing = sorted(set(games) - set(rows["game"]))
        if missing:
            raise ValueError(f"method {method!r} has no runs on games {missing}; aggregate the same games for all")
        per_game = [rows[rows["game"] == game].sort_values("seed")["hns"].to_numpy() for game in games]
        runs = min(len(scores) for scores in per_game)
        dropped = sum(len(scores) for scores in per_game) - runs * len(games)
        if dropped:
            warnings.warn(f"{method}: {dropped} runs left out so every game has {runs} runs", stacklevel=2)
        matrices[method] = np.stack([scores[:runs] for scores in per_game], axis=1)
    return matrices


def _interval_estimates(matrices: dict[str, np.ndarray], func, reps: int, confidence: float, seed: int):
    """rliable's stratified bootstrap, seeded, so a re-made table shows the same CIs.

    rliable 1.2's StratifiedBootstrap draws its resamples from numpy's global RNG and leaves the
    `random_state` it is given unused, so the global RNG is seeded here (and restored after). The
    RandomState still goes in for a rliable that uses it; arch's FutureWarning about that deprecated
    argument is rliable's to fix, not the user's."""
    outside = np.random.get_state()  # noqa: NPY002  (rliable reads the global RNG)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
            return rly.get_interval_estimates(matrices, func, reps=reps, confidence_interval_size=confidence,
                                              random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(outside)  # noqa: NPY002


def aggregate_scores(
    matrices: dict[str, np.ndarray], reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """IQM, median and mean of each method's (runs, games) matrix with stratified bootstrap CIs.

    Columns: method, metric, estimate, low, high, runs, games. Median and mean are of the per-game
    means (rliable's definitions); IQM pools all runs and games.
    """
    def all_aggregates(scores: np.ndarray) -> np.ndarray:
        return np.array([aggregate(scores) for aggregate in AGGREGATES.values()])

    points, intervals = _interval_estimates(matrices, all_aggregates, reps, confidence, seed)
    rows = [
        {"method": method, "metric": metric, "estimate": points[method][i], "low": intervals[method][0, i],
         "high": intervals[method][1, i], "runs": matrices[method].shape[0], "games": matrices[method].shape[1]}
        for method in matrices
        for i, metric in enumerate(AGGREGATES)
    ]
    return pd.DataFrame(rows)


def performance_profiles(
    matrices: dict[str, np.ndarray], taus: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fraction of runs (over all games) with HNS > tau, for each tau, with stratified bootstrap CIs.

    Returns ({method: (len(taus),)}, {method: (2, len(taus)) low/high}).
    """
    def profile(scores: np.ndarray) -> np.ndarray:
        return (scores[..., None] > taus).mean(axis=(0, 1))

    return _interval_estimates(matrices, profile, reps, confidence, seed)
