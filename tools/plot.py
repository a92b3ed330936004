"""Learning curves and final-score tables from many runs: `python -m tools.plot RUN_DIRS... --out fig.png`.

Runs are grouped by env (one panel each) x agent x intervention (one curve each); a curve is the mean
over seeds with a 95 % percentile-bootstrap band, and dotted vertical lines mark the env steps where
that method intervened. Beside fig.png it writes fig.csv (one row per run: final score, and HNS with
--atari) and fig.md (final scores per group, mean and 95 % CI). With --atari it also writes
fig_aggregates.{png,csv}: IQM / median / mean human-normalised score over games with stratified
bootstrap CIs, and performance profiles.
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm import tqdm

from tools.markdown import markdown_table
from tools.runs import Run, align, curve, find_runs, intervention_steps, load_run, read_scalars
from tools.stats import bootstrap_mean_ci

DEFAULT_TAG = "eval/episodic_return"
# One colour per intervention in every figure, whichever methods it shows (SAC and DQN never share a panel:
# their action spaces differ). Interventions not listed take one of the remaining colours by name.
INTERVENTION_COLOURS = {"none": "tab:gray", "fire": "tab:red", "reset": "tab:blue", "snp": "tab:green",
                        "head_reset": "tab:orange", "redo": "tab:purple", "pi": "tab:brown"}
OTHER_COLOURS = ("tab:pink", "tab:olive", "tab:cyan")


@dataclass(frozen=True)
class RunCurve:
    run: Run
    values: pd.Series  # the tag's values indexed by env step
    interventions: tuple[int, ...]  # env steps


def load_curves(paths: Sequence[str | Path], tag: str = DEFAULT_TAG, progress: bool = False,
                bin_env_steps: int | None = None) -> list[RunCurve]:
    """Find the runs under paths and read one tag from each. A run without the tag (not evaluated yet,
    killed early) is skipped with a warning on stderr; ValueError if no run is found or none has it.

    bin_env_steps: average each run's values over bins of env steps (b - bin, b], indexed by b, so that
    seeds line up where every run logs at its own steps (training episodes' returns)."""
    run_dirs = find_runs(paths)
    if not run_dirs:
        raise ValueError(f"no run directories (with config.yaml) under: {' '.join(map(str, paths))}")
    loaded, skipped = [], []
    # disable=None: tqdm shows the bar only on a terminal, so piped output and error lines stay clean.
    for path in tqdm(run_dirs, desc="reading runs", unit="run", disable=None if progress else True):
        run = load_run(path)
        scalars = read_scalars(path)
        try:
            values = curve(scalars, tag, path)
        except ValueError as missing:
            skipped.append(str(missing))
            continue
        if bin_env_steps:
            ends = (values.index - 1) // bin_env_steps * bin_env_steps + bin_env_steps
            values = values.groupby(ends).mean()
        loaded.append(RunCurve(run, values, intervention_steps(run, scalars)))
    if not loaded:
        raise ValueError(f"no run has tag {tag!r}: " + "; ".join(skipped))
    for reason in skipped:
        print(f"warning: skipped: {reason}", file=sys.stderr)
    return loaded


def _groups(curves: Sequence[RunCurve]) -> dict[tuple[str, str], list[RunCurve]]:
    """{(env, method): its runs in seed order}, keys sorted."""
    groups: dict[tuple[str, str], list[RunCurve]] = {}
    for c in sorted(curves, key=lambda c: (c.run.env, c.run.method, c.run.seed)):
        groups.setdefault((c.run.env, c.run.method), []).append(c)
    return groups


def _per_seed(group: Sequence[RunCurve]) -> list[pd.Series]:
    """One curve per distinct seed: runs that repeat a seed are averaged (per env step) before the
    statistics, so the CIs and n count seeds, not runs."""
    by_seed: dict[int, list[pd.Series]] = {}
    for c in group:
        by_seed.setdefault(c.run.seed, []).append(c.values)
    return [pd.concat(runs, axis=1).mean(axis=1) if len(runs) > 1 else runs[0] for runs in by_seed.values()]


def learning_curves(curves: Sequence[RunCurve], reps: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean and 95 % bootstrap CI across seeds at every logged env step, per env and method.

    Columns: env, method, step, mean, low, high, seeds (how many distinct seeds were evaluated at that
    step; runs repeating a seed are averaged first).
    """
    frames = []
    for (env, method), group in _groups(curves).items():
        steps, values = align(_per_seed(group))
        mean, low, high = bootstrap_mean_ci(values, reps=reps, seed=seed)
        frames.append(pd.DataFrame({"env": env, "method": method, "step": steps, "mean": mean, "low": low,
                                    "high": high, "seeds": np.isfinite(values).sum(axis=0)}))
    return pd.concat(frames, ignore_index=True)


def final_scores(curves: Sequence[RunCurve], window: int = 1) -> pd.DataFrame:
    """One row per run: env, game, agent, intervention, method, seed, step (last logged env step),
    final (mean of the last `window` logged values), path."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    rows = [
        {"env": c.run.env, "game": c.run.game, "agent": c.run.agent, "intervention": c.run.intervention,
         "method": c.run.method, "seed": c.run.seed, "step": int(c.values.index[-1]),
         "final": float(c.values.iloc[-window:].mean()), "path": str(c.run.path)}
        for group in _groups(curves).values()
        for c in group
    ]
    return pd.DataFrame(rows)


def final_table(finals: pd.DataFrame, columns: Sequence[str] = ("final",), reps: int = 2000,
                seed: int = 0) -> pd.DataFrame:
    """Per env and method: distinct seeds, and for each score column its mean over seeds with a 95 %
    bootstrap CI (columns <col>_mean, <col>_low, <col>_high); runs repeating a seed are averaged first."""
    rows = []
    for (env, method), runs in finals.groupby(["env", "method"], sort=True):
        group = runs.groupby("seed")[list(columns)].mean()
        row = {"env": env, "method": method, "seeds": len(group)}
        for column in columns:
            mean, low, high = bootstrap_mean_ci(group[column].to_numpy(), reps=reps, seed=seed)
            row.update({f"{column}_mean": float(mean), f"{column}_low": float(low), f"{column}_high": float(high)})
        rows.append(row)
    return pd.DataFrame(rows)


def _interventions_by_panel(curves: Sequence[RunCurve]) -> dict[str, dict[str, set[int]]]:
    marks: dict[str, dict[str, set[int]]] = {}
    for c in curves:
        marks.setdefault(c.run.env, {}).setdefault(c.run.method, set()).update(c.interventions)
    return marks


def method_colour(method: str) -> str:
    """The colour of a method ("agent+intervention[ variant]") in every panel and figure: its intervention's."""
    intervention = method.split("+", 1)[-1].split(" ")[0]
    if intervention in INTERVENTION_COLOURS:
        return INTERVENTION_COLOURS[intervention]
    return OTHER_COLOURS[zlib.crc32(intervention.encode()) % len(OTHER_COLOURS)]


def draw_curves(table: pd.DataFrame, curves: Sequence[RunCurve], tag: str, out: Path) -> None:
    """One panel per env: mean curve and CI band per method, dotted lines at its intervention steps."""
    envs = sorted(table["env"].unique())
    columns = min(3, len(envs))
    rows = math.ceil(len(envs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    marks = _interventions_by_panel(curves)
    for ax, env in zip(axes.flat, envs, strict=False):
        panel = table[table["env"] == env]
        # Beside variants (primed, branched runs), the plain runs are the reference: dashed, same colours.
        reference_style = "--" if panel["method"].str.contains(" ").any() else "-"
        for method, points in panel.groupby("method"):
            colour = method_colour(method)
            style = "-" if " " in method or reference_style == "-" else reference_style
            label = f"{method} (n={points['seeds'].max()})"
            if len(points) == 1:  # a line or band through one point draws nothing: a marker with its CI
                mean, low, high = points[["mean", "low", "high"]].to_numpy()[0]
                ax.errorbar(points["step"], [mean], yerr=[[mean - low], [high - mean]], fmt="o", color=colour,
                            capsize=3, label=label)
            else:
                ax.plot(points["step"], points["mean"], color=colour, linestyle=style, label=label)
                ax.fill_between(points["step"], points["low"], points["high"], color=colour, alpha=0.2,
                                linewidth=0)
            for step in sorted(marks[env].get(method, ())):
                ax.axvline(step, color=colour, linestyle=":", linewidth=1)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel(tag)
        ax.legend(fontsize="small")
    for ax in axes.flat[len(envs):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def draw_aggregates(aggregates: pd.DataFrame, profiles: tuple[dict, dict], taus: np.ndarray, out: Path) -> None:
    """IQM / median / mean HNS with CIs (one panel each) and the performance profiles."""
    metrics = list(dict.fromkeys(aggregates["metric"]))
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4 * (len(metrics) + 1), 3.2))
    methods = sorted(aggregates["method"].unique())
    colours = {method: method_colour(method) for method in methods}
    for ax, metric in zip(axes, metrics, strict=False):
        rows = aggregates[aggregates["metric"] == metric].set_index("method").loc[methods]
        for y, (method, row) in enumerate(rows.iterrows()):
            ax.plot([row["low"], row["high"]], [y, y], color=colours[method], linewidth=6, alpha=0.6)
            ax.plot([row["estimate"]], [y], "k|", markersize=12)
        ax.set_yticks(range(len(methods)), methods if ax is axes[0] else [""] * len(methods))
        ax.set_title(metric)
        ax.set_xlabel("human-normalised score")
    points, intervals = profiles
    ax = axes[-1]
    for method in methods:
        ax.plot(taus, points[method], color=colours[method], label=method)
        ax.fill_between(taus, intervals[method][0], intervals[method][1], color=colours[method], alpha=0.2)
    ax.set_xlabel(r"HNS threshold $\tau$")
    ax.set_ylabel(r"fraction of runs with HNS > $\tau$")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_atari(finals: pd.DataFrame, out: Path, reps: int) -> pd.DataFrame:
    """HNS aggregates and profiles beside out: <stem>_aggregates.{png,csv}; returns the aggregates."""
    from tools import atari  # rliable and arch take seconds to import; only --atari needs them

    matrices = atari.hns_matrices(finals)
    aggregates = atari.aggregate_scores(matrices, reps=reps)
    top = max(1.0, float(max(m.max() for m in matrices.values())))
    taus = np.linspace(0.0, top, 101)
    profiles = atari.performance_profiles(matrices, taus, reps=reps)
    stem = out.with_name(out.stem + "_aggregates")
    aggregates.to_csv(stem.with_suffix(".csv"), index=False)
    draw_aggregates(aggregates, profiles, taus, stem.with_suffix(".png"))
    return aggregates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plot", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories, or folders searched for them")
    parser.add_argument("--out", required=True, type=Path, help="figure path (.png); tables go beside it")
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"scalar to plot (default {DEFAULT_TAG})")
    parser.add_argument("--atari", action="store_true", help="human-normalised scores and rliable aggregates")
    parser.add_argument("--final-window", type=int, default=1, help="final score = mean of the last N values")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--bin-env-steps", type=int, help="average each run's values per bin of this many env "
                        "steps first (for tags logged at run-specific steps, e.g. charts/episodic_return)")
    args = parser.parse_args(argv)
    if args.out.suffix != ".png":
        parser.error(f"--out must end in .png, got {str(args.out)!r}")
    try:
        curves = load_curves(args.runs, args.tag, progress=True, bin_env_steps=args.bin_env_steps)
        if args.atari:
            not_atari = [str(c.run.path) for c in curves if c.run.game is None]
            if not_atari:
                raise ValueError(f"--atari: these runs are not Atari runs (env.suite != atari): {not_atari}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        print(f"{len(curves)} runs in {len({(c.run.env, c.run.method) for c in curves})} groups", file=sys.stderr)
        draw_curves(learning_curves(curves, reps=args.reps), curves, args.tag, args.out)
        finals = final_scores(curves, args.final_window)
        columns = ["final"]
        if args.atari:
            from tools.atari import add_hns

            finals, columns = add_hns(finals), ["final", "hns"]
        finals.to_csv(args.out.with_suffix(".csv"), index=False)
        report = f"# Final {args.tag} (mean of the last {args.final_window} value(s); 95 % bootstrap CI)\n\n"
        report += markdown_table(final_table(finals, columns, reps=args.reps))
        if args.atari:
            aggregates = write_atari(finals, args.out, args.reps)
            report += "\n# Human-normalised aggregates over games (stratified bootstrap 95 % CI)\n\n"
            report += markdown_table(aggregates)
        args.out.with_suffix(".md").write_text(report)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} and its .csv/.md" + (" and _aggregates.{png,csv}" if args.atari else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
