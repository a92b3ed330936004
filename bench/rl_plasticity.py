"""RL protocols where the no-intervention agent loses plasticity, run for each intervention and seed:
`python -m bench.rl_plasticity [--protocols ...] [--seeds N] [--jobs 2] [--dry-run]`.

Each protocol is an `experiment=` preset (configs/experiment/), run for every method below and every
seed as one `train.py` process with a fixed run directory and `resume=auto`: a re-launched command skips
finished runs and continues killed ones exactly from their checkpoints. Up to `--jobs` processes run at
once, each with threads=1 (the sizes are chosen so that one protocol, 5 methods x 5 seeds, takes about
an hour on 2 CPU cores).

* priming_sac_hopper: heavy priming (Nikishin et al. 2022): SAC does `priming_updates` extra updates on
  the warm-up's transitions, the fixed-schedule methods intervene right after; score: final evaluation,
  beside the same agent without priming (the `unprimed` reference runs).
* priming_sac_walker2d: the same on Walker2d-v5.
* continual_minatar: one DQN plays a sequence of MinAtar games, intervening at every switch; score per
  game: the training return at the end of the game's last turn, relative to a network trained fresh on
  that game for one turn (the `fresh` reference runs; 1 = as good as fresh).
* warmstart_minatar: the FIRE paper's two-stage protocol at MinAtar scale, as a warm start: one stage-1
  run per seed on breakout without intervention, then every method branches from its final checkpoint
  (`load_checkpoint=`), intervenes once at load and trains on space_invaders; score: final evaluation,
  beside a network trained fresh on space_invaders for as long (the `fresh` reference runs).

Methods: none, fire, reset, snp (at the protocol's schedule) and fire_adaptive (FIRE whenever the
protocol's signal of the critic / Q-network, loop/trigger.py, reaches the preset's `reinit.threshold`).

Writes bench/results/rl_plasticity.csv (one row per run: protocol, method, seed, score, per-task scores,
the exact train.py command, run time), rl_plasticity.md (per protocol: mean and IQM with 95 % stratified
bootstrap CIs, rliable) and rl_plasticity_<protocol>.png (learning curves with 95 % CIs and intervention
lines, tools.plot).
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from loop import rundir
from loop.checkpoint import checkpoint_path
from loop.config import ConfigError, compose
from tools import plot
from tools.markdown import markdown_table
from tools.runs import curve, read_scalars

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
RUNS = Path("runs/rl_plasticity")
STAGE1 = "stage1"
DONE = "bench_run.json"  # written in a run directory when its train.py process finished

METHODS: dict[str, tuple[str, ...]] = {
    "none": ("reinit=none",),
    "fire": ("reinit=fire",),
    "reset": ("reinit=reset",),
    "snp": ("reinit=snp",),
    # The trigger alone decides (its signal is the protocol's, its threshold the preset's): no fixed
    # schedule, no intervention at load.
    "fire_adaptive": ("reinit=fire", "reinit.at_env_steps=[]", "reinit.every_env_steps=null", "reinit.on_load=false"),
}
ADAPTIVE = "fire_adaptive"


# A finished run's TensorBoard scalars, parsed once: its score, second score and interventions all read them.
scalars_of = functools.cache(read_scalars)


def _evaluations(run_dir: Path) -> pd.Series:
    return curve(scalars_of(run_dir), "eval/episodic_return", run_dir)


def final_evaluation(run_dir: Path) -> dict[str, float]:
    """{"return": the last eval/episodic_return} of a run."""
    return {"return": float(_evaluations(run_dir).iloc[-1])}


def evaluation_mean(run_dir: Path) -> dict[str, float]:
    """{"return": the mean of all the run's eval/episodic_return}: the area under its evaluation curve, which
    a late dip or spike moves less than the final evaluation."""
    return {"return": float(_evaluations(run_dir).mean())}


def _config(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def end_of_turn_returns(run_dir: Path, window: float = 0.25) -> dict[str, float]:
    """Per game: the mean training return of the episodes ending in the last `window` of the game's last
    turn (continual runs: env.games in turns of env.switch_env_steps; single-game runs: one turn, the run)."""
    config = _config(run_dir)
    env, total = config["env"], int(config["total_env_steps"])
    returns = curve(scalars_of(run_dir), "charts/episodic_return", run_dir)
    games = env.get("games") or [env["game"]]
    turn = int(env.get("switch_env_steps") or total)
    scores = {}
    for index, game in enumerate(games):
        starts = [s for s in range(index * turn, total, len(games) * turn) if s + turn <= total]
        if not starts:
            continue
        end = starts[-1] + turn
        inside = returns[(returns.index > end - window * turn) & (returns.index <= end)]
        scores[game] = float(inside.mean()) if len(inside) else float("nan")
    return scores


def interventions(run_dir: Path) -> dict[int, float]:
    """{env step: the trigger's signal value there, or NaN for a scheduled one} of every intervention in a run."""
    scalars = scalars_of(run_dir)
    events = scalars[scalars["tag"] == "reinit/event"]["step"]
    values = scalars[scalars["tag"] == "reinit/trigger_value"].set_index("step")["value"]
    return {int(step): float(values.get(step, float("nan"))) for step in events}


def unprimed(preset: Mapping) -> dict[str, tuple[str, ...]]:
    """Heavy priming's reference: the same agent without priming (what priming costs)."""
    return {"unprimed": ("reinit=none", "priming_updates=0", "reinit.at_env_steps=[]")}


WARMSTART_MIDPOINT = 100_000  # configs/experiment/warmstart_minatar_dqn.yaml: stage 1 on breakout this long


def fresh_after_warm_start(preset: Mapping) -> dict[str, tuple[str, ...]]:
    """Two-stage runs' reference: a network trained fresh on the stage-2 game for as long as stage 2."""
    return {f"fresh/{preset['env']['game']}": ("reinit=none",
                                              f"total_env_steps={preset['total_env_steps'] - WARMSTART_MIDPOINT}")}


def fresh_per_game(preset: Mapping) -> dict[str, tuple[str, ...]]:
    """Continual runs' reference: per game, a network trained fresh on it for one turn (same agent sizes)."""
    from envs.minatar import num_channels

    games, turn = preset["env"]["games"], preset["env"]["switch_env_steps"]
    # The continual env's spaces: MinAtar's 6 actions and observations padded to the games' most channels.
    spaces = ("env.kwargs.full_action_set=true", f"+env.kwargs.channels={max(map(num_channels, games))}")
    return {f"fresh/{game}": ("reinit=none", "env=minatar", f"env.game={game}", "~env.games", "~env.switch_env_steps",
                              *spaces, f"total_env_steps={turn}") for game in games}


@dataclass(frozen=True)
class Protocol:
    """One experiment preset, its methods' runs and how a run is scored."""

    name: str
    overrides: tuple[str, ...]  # of every run, e.g. ("experiment=priming_sac_hopper",)
    score: Callable[[Path], dict[str, float]] = final_evaluation  # per-task scores of a finished run
    stage1_env_steps: int | None = None  # two-stage: a shared per-seed run this long, every method branches from it
    stage1: tuple[str, ...] = ()  # and its overrides besides reinit=none
    # Baseline runs beside the methods, {"<method>/<variant>": overrides}, from the composed overrides.
    references: Callable[[Mapping], dict[str, tuple[str, ...]]] | None = None
    normalize_by: str | None = None  # a reference method: each task score is divided by its mean on the task
    signal: str = "dormant"  # the adaptive method's reinit.trigger
    # A second score, tabled beside `score` (None: none); the CSV's `eval_mean` column.
    curve_score: Callable[[Path], dict[str, float]] | None = evaluation_mean


PROTOCOLS: dict[str, Protocol] = {
    "priming_sac_hopper": Protocol("priming_sac_hopper", ("experiment=priming_sac_hopper",), references=unprimed,
                                   signal="dfi"),
    "priming_sac_walker2d": Protocol("priming_sac_walker2d", ("experiment=priming_sac_walker2d",),
                                     references=unprimed, signal="dfi"),
    "continual_minatar": Protocol("continual_minatar", ("experiment=continual_minatar_dqn",),
                                  score=end_of_turn_returns, references=fresh_per_game, normalize_by="fresh",
                                  curve_score=None),
    "warmstart_minatar": Protocol("warmstart_minatar", ("experiment=warmstart_minatar_dqn",),
                                  stage1_env_steps=WARMSTART_MIDPOINT, stage1=("env.game=breakout",),
                                  references=fresh_after_warm_start),
}


@dataclass(frozen=True)
class Job:
    protocol: str
    method: str  # a METHODS key, a reference method, or STAGE1
    seed: int
    run_dir: Path  # as train.py gets it: relative to the repository root, or absolute
    overrides: tuple[str, ...]

    @property
    def path(self) -> Path:
        return ROOT / self.run_dir

    @property
    def command(self) -> list[str]:
        return ["python", "train.py", *self.overrides, f"seed={self.seed}", f"run_dir={self.run_dir}",
                "resume=auto", "quiet=true", "threads=1"]


def jobs_of(protocol: Protocol, seeds: Sequence[int], runs: Path,
            methods: Sequence[str] | None = None) -> tuple[list[Job], list[Job]]:
    """(stage-1 jobs, the other jobs): the second list needs the first finished. `methods`: only these
    methods and references (e.g. ["none", "fresh"], a pilot of the protocol's gap); None: all."""
    base, preset = runs / protocol.name, protocol.overrides
    stage1 = []
    if protocol.stage1_env_steps:
        stage1 = [Job(protocol.name, STAGE1, s, base / STAGE1 / f"seed{s}",
                      (*preset, "reinit=none", *protocol.stage1, f"total_env_steps={protocol.stage1_env_steps}"))
                  for s in seeds]
    references = protocol.references(compose(*preset)) if protocol.references else {}
    jobs = []
    for method, overrides in {**METHODS, **references}.items():
        if methods is not None and method.split("/")[0] not in methods:
            continue
        for s in seeds:
            branch = ()
            if protocol.stage1_env_steps and method in METHODS:
                # The stage-1 run's last checkpoint: the loop always writes one at total_env_steps.
                midpoint = checkpoint_path(base / STAGE1 / f"seed{s}" / "checkpoints", protocol.stage1_env_steps)
                branch = (f"load_checkpoint={midpoint}",)
            trigger = (f"reinit.trigger={protocol.signal}",) if method == ADAPTIVE else ()
            jobs.append(Job(protocol.name, method.split("/")[0], s, base / method / f"seed{s}",
                            (*preset, *overrides, *trigger, *branch)))
    # Seed by seed: a sweep stopped part-way leaves whole seeds of every method, comparable cell by cell.
    return stage1, sorted(jobs, key=lambda job: job.seed)


def finished(job: Job) -> dict | None:
    path = job.path / DONE
    return json.loads(path.read_text()) if path.is_file() else None


def in_use(job: Job) -> bool:
    """Whether another process runs this job now (train.py holds its run directory's lock)."""
    if not (job.path / rundir.LOCK_FILE).is_file():
        return False
    try:
        with rundir.locked(job.path):
            return False
    except ConfigError:
        return True


def run(job: Job) -> dict | None:
    """Run (or continue) one job's train.py; returns its DONE record, or None when another process runs it (a
    second `bench.rl_plasticity` with the same arguments shares the work). Time of interrupted attempts adds up."""
    if done := finished(job):
        return done
    if in_use(job):
        print(f"skipped, running in another process: {job.run_dir}", flush=True)
        return None
    log = job.path.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    partial = job.path.with_suffix(".seconds")
    before = float(partial.read_text()) if partial.is_file() else 0.0
    start = time.perf_counter()
    with open(log, "a") as out:
        rc = subprocess.run([sys.executable, *job.command[1:]], cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT).returncode
    seconds = before + time.perf_counter() - start
    if rc != 0 and in_use(job):  # taken by another process between the check above and our start
        print(f"skipped, running in another process: {job.run_dir}", flush=True)
        return None
    partial.write_text(f"{seconds:.1f}")
    if rc != 0:
        raise RuntimeError(f"{shlex.join(job.command)} failed (exit {rc}); see {log}")
    record = {"seconds": round(seconds, 1), "command": shlex.join(job.command)}
    (job.path / DONE).write_text(json.dumps(record))
    return record


def run_all(jobs: Sequence[Job], parallel: int) -> None:
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(run, jobs))  # list(): re-raises the first failure


def scores_table(protocol: Protocol, jobs: Sequence[Job]) -> pd.DataFrame:
    """One row per finished run: protocol, method, seed, score, tasks (task=score;...), interventions ({env
    step: trigger value}), command, seconds; write_results adds eval_mean (the protocol's curve_score).

    With normalize_by, each task score is divided by the mean of that reference's runs on the task; a task
    whose reference mean is 0 (e.g. freeway, where a short fresh run scores nothing) or that has no reference
    run has no relative score and is left out of every row (listed in the frame's attrs["unscored"])."""
    rows = []
    for job in jobs:
        done = finished(job)
        if done is None:
            continue
        rows.append({"protocol": protocol.name, "method": job.method, "seed": job.seed,
                     "tasks": protocol.score(job.path), "interventions": interventions(job.path),
                     "command": done["command"], "seconds": done["seconds"]})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if protocol.normalize_by:
        reference: dict[str, list[float]] = {}
        for row in rows:
            if row["method"] == protocol.normalize_by:
                for task, value in row["tasks"].items():
                    reference.setdefault(task, []).append(value)
        means = {task: float(np.nanmean(values)) for task, values in reference.items()}
        frame["tasks"] = [{t: v / means[t] for t, v in tasks.items() if means.get(t)} for tasks in frame["tasks"]]
        frame.attrs["unscored"] = sorted({t for r in rows for t in r["tasks"]} - {t for t, m in means.items() if m})
    frame["score"] = [float(np.nanmean(list(tasks.values()))) if tasks else float("nan") for tasks in frame["tasks"]]
    return frame


def aggregate(frame: pd.DataFrame, reps: int = 2000) -> pd.DataFrame:
    """Per method: runs, tasks, mean and IQM with 95 % stratified bootstrap CIs over (runs, tasks) score matrices.

    A reference's runs on different tasks (fresh/breakout, fresh/space_invaders) pool into one method."""
    from tools.atari import aggregate_scores  # rliable is slow to import

    matrices: dict[str, np.ndarray] = {}
    for method, rows in frame.groupby("method", sort=False):
        by_task: dict[str, list[float]] = {}
        for tasks in rows.sort_values("seed")["tasks"]:
            for task, value in tasks.items():
                by_task.setdefault(task, []).append(value)
        runs = min(len(v) for v in by_task.values())
        matrices[method] = np.array([values[:runs] for _, values in sorted(by_task.items())]).T
    table = aggregate_scores(matrices, reps=reps)
    table = table[table["metric"].isin(["mean", "IQM"])]
    wide = table.pivot(index="method", columns="metric", values=["estimate", "low", "high"])
    out = pd.DataFrame({"method": wide.index, "runs": [matrices[m].shape[0] for m in wide.index],
                        "tasks": [matrices[m].shape[1] for m in wide.index]})
    for metric in ("mean", "IQM"):
        out[metric] = wide[("estimate", metric)].to_numpy()
        out[f"{metric} 95% CI"] = [f"[{lo:.3g}, {hi:.3g}]" for lo, hi in
                                  zip(wide[("low", metric)], wide[("high", metric)], strict=True)]
    order = {m: i for i, m in enumerate(matrices)}
    return out.sort_values("method", key=lambda s: s.map(order)).reset_index(drop=True)


def write_results(protocols: Sequence[Protocol], all_jobs: Mapping[str, list[Job]], out: Path,
                  reps: int = 2000, stage1_jobs: Mapping[str, list[Job]] | None = None) -> pd.DataFrame:
    """The CSV, the markdown tables and one learning-curve figure per protocol.

    The CSV and the markdown cover every protocol: the rows and the section of a protocol not in
    `protocols` are kept from the files already in `out`, so running one protocol updates only its own.

    Stage-1 runs (two-stage protocols) get CSV rows of their own, method "stage1" and their final evaluation
    on the stage-1 task, so that every branch's `load_checkpoint=` can be re-made from the CSV; they are
    not a method of the tables or figures."""
    out.mkdir(parents=True, exist_ok=True)
    frames, sections = [], {}
    for protocol in protocols:
        frame = scores_table(protocol, all_jobs[protocol.name])
        if frame.empty:
            continue
        sections[protocol.name] = report = []
        curve_frame = None
        if protocol.curve_score:
            curve_frame = scores_table(replace(protocol, score=protocol.curve_score), all_jobs[protocol.name])
            frame["eval_mean"] = curve_frame["score"].to_numpy()
        stage1 = (stage1_jobs or {}).get(protocol.name, [])
        frames.append(pd.concat([scores_table(replace(protocol, score=final_evaluation, normalize_by=None), stage1),
                                 frame], ignore_index=True) if stage1 else frame)
        unit = f"return relative to `{protocol.normalize_by}`" if protocol.normalize_by else "return"
        report.append(f"## {protocol.name}\n\nScore: {unit}; {len(frame)} runs, "
                      f"{frame['seconds'].sum() / 3600:.2f} h of run time in all.\n")
        if frame.attrs.get("unscored"):
            report.append(f"Left out of the score (no `{protocol.normalize_by}` mean above 0 to divide by): "
                          f"{', '.join(frame.attrs['unscored'])}.\n")
        report.append(markdown_table(aggregate(frame, reps)))
        if curve_frame is not None:
            report.append("\nThe mean of each run's evaluations (the area under its curve):\n")
            report.append(markdown_table(aggregate(curve_frame, reps)))
        report.append(_trigger_summary(protocol, frame))
        tag = "charts/episodic_return" if protocol.score is end_of_turn_returns else plot.DEFAULT_TAG
        run_dirs = [str(job.path) for job in all_jobs[protocol.name] if finished(job)]
        figure = out / f"rl_plasticity_{protocol.name}.png"
        argv = [*run_dirs, "--out", str(figure), "--tag", tag, "--reps", str(reps)]
        if tag != plot.DEFAULT_TAG:
            argv += ["--bin-env-steps", str(_episode_bin(run_dirs[0]))]
        if plot.main(argv) != 0:
            raise RuntimeError(f"tools.plot failed for {protocol.name}")
        report.append(f"\n![{protocol.name}]({figure.name})\n")
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CSV_COLUMNS)
    if frames:
        table["tasks"] = [";".join(f"{t}={v:.4g}" for t, v in tasks.items()) for tasks in table["tasks"]]
        table["interventions"] = [";".join(map(str, steps)) for steps in table["interventions"]]
        if "eval_mean" not in table:
            table["eval_mean"] = float("nan")
        table = table[CSV_COLUMNS]
    _merge_into(out, {p.name for p in protocols}, table, sections)
    return table


CSV_COLUMNS = ["protocol", "method", "seed", "score", "eval_mean", "tasks", "interventions", "command", "seconds"]
REPORT_TITLE = "# RL plasticity protocols (bench/rl_plasticity.py)\n"


def _merge_into(out: Path, written: set[str], table: pd.DataFrame, sections: Mapping[str, list[str]]) -> None:
    """rl_plasticity.csv and .md with the protocols in `written` replaced by `table` and `sections` and the
    others kept as the files had them; protocols in PROTOCOLS' order, then others by name."""
    def rank(name: str) -> tuple[int, str]:
        return list(PROTOCOLS).index(name) if name in PROTOCOLS else len(PROTOCOLS), name

    csv, md = out / "rl_plasticity.csv", out / "rl_plasticity.md"
    # As text, so that the kept rows are written back exactly as they were.
    kept = (pd.read_csv(csv, dtype=str, keep_default_na=False) if csv.is_file() and csv.stat().st_size
            else pd.DataFrame(columns=CSV_COLUMNS))
    parts = [frame for frame in (kept[~kept["protocol"].isin(written)], table) if not frame.empty]
    merged = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CSV_COLUMNS)
    merged = merged.sort_values("protocol", key=lambda names: names.map(rank), kind="stable")
    merged.to_csv(csv, index=False)
    texts = {}
    if md.is_file():
        for part in md.read_text().split("\n## ")[1:]:
            texts[part.split("\n", 1)[0].strip()] = "## " + part.rstrip("\n") + "\n"
    texts = {name: text for name, text in texts.items() if name not in written}
    texts.update({name: "\n".join(lines) for name, lines in sections.items()})
    md.write_text("\n".join([REPORT_TITLE, *(texts[name] for name in sorted(texts, key=rank))]))


def _trigger_summary(protocol: Protocol, frame: pd.DataFrame) -> str:
    """One line: in how many adaptive runs the trigger fired, where, and the signal's value then."""
    runs = frame[frame["method"] == ADAPTIVE].sort_values("seed")
    if runs.empty:
        return ""
    fired = [f"seed {row.seed}: " + ", ".join(f"{step} ({value:.3g})" for step, value in row.interventions.items())
             for row in runs.itertuples() if row.interventions]
    return (f"\n`{ADAPTIVE}` (reinit.trigger={protocol.signal}) fired in {len(fired)} of {len(runs)} runs"
            + (f", at env step (signal): {'; '.join(fired)}" if fired else "") + ".\n")


def _episode_bin(run_dir: str) -> int:
    """Training returns are binned per 1/20 of a run so that seeds line up."""
    return max(1, int(_config(Path(run_dir))["total_env_steps"]) // 20)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rl_plasticity", description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per method (default 5)")
    parser.add_argument("--jobs", type=int, default=2, help="train.py processes at once (default 2)")
    parser.add_argument("--runs", type=Path, default=RUNS, help=f"run directories go here (default {RUNS})")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"tables and figures (default {RESULTS})")
    parser.add_argument("--methods", nargs="+", help="only these methods and references (default: all), "
                        "e.g. --methods none fresh for a pilot of a protocol's gap")
    parser.add_argument("--dry-run", action="store_true", help="print the train.py commands and exit")
    parser.add_argument("--report", action="store_true",
                        help="only write the tables and figures from the runs that finished (run nothing)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be >= 1")
    return execute([PROTOCOLS[p] for p in args.protocols], range(args.seeds), args.jobs, args.runs, args.out,
                   args.dry_run, methods=args.methods, report=args.report)


def execute(protocols: Sequence[Protocol], seeds: Sequence[int], parallel: int, runs: Path, out: Path,
            dry_run: bool = False, reps: int = 2000, methods: Sequence[str] | None = None,
            report: bool = False) -> int:
    planned = {p.name: jobs_of(p, seeds, runs, methods) for p in protocols}
    if dry_run:
        for stage1, jobs in planned.values():
            for job in [*stage1, *jobs]:
                print(("# done: " if finished(job) else "") + shlex.join(job.command))
        return 0
    if not report:
        for name, (stage1, jobs) in planned.items():
            print(f"{name}: {len(stage1) + len(jobs)} runs", file=sys.stderr, flush=True)
            run_all(stage1, parallel)
            waiting = {job.seed for job in stage1 if not finished(job)}  # stage 1 still running elsewhere
            if waiting:
                print(f"{name}: seeds {sorted(waiting)} wait for their stage-1 runs", file=sys.stderr, flush=True)
            run_all([job for job in jobs if job.method not in METHODS or job.seed not in waiting], parallel)
    write_results(protocols, {name: jobs for name, (_, jobs) in planned.items()}, out, reps,
                  stage1_jobs={name: stage1 for name, (stage1, _) in planned.items()})
    print(f"wrote {out / 'rl_plasticity.csv'}, {out / 'rl_plasticity.md'} and the figures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
