"""bench.rl_plasticity: the CSV rows and markdown tables from run directories (synthetic, fast), the
continual score and its normalisation, --dry-run, and end to end (slow) on a tiny fake protocol: 2 methods
x 2 seeds of a few hundred Pendulum steps as real train.py processes, resumable."""

from __future__ import annotations

import json
import shlex
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from bench import rl_plasticity
from bench.rl_plasticity import DONE, Protocol, end_of_turn_returns

TINY = ("agent=sac", "env=pendulum", "replay.batch_size=16", "agent.net.hidden_dims=[16,16]", "learning_starts=100",
        "total_env_steps=300", "eval.every_env_steps=150", "eval.episodes=1", "env.max_episode_steps=50",
        "checkpoint.every_env_steps=150", "diagnostics.every_updates=0")
METHODS = {"none": ("reinit=none",), "fire": ("reinit=fire", "reinit.at_env_steps=[200]")}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(rl_plasticity, "METHODS", METHODS)
    return Protocol("tiny", TINY)


def test_dry_run_prints_one_command_per_run(tiny, tmp_path, capsys):
    assert rl_plasticity.execute([tiny], range(2), 2, tmp_path / "runs", tmp_path / "out", dry_run=True) == 0
    commands = capsys.readouterr().out.splitlines()
    assert len(commands) == 4
    assert shlex.split(commands[0])[:2] == ["python", "train.py"]
    assert all("resume=auto" in c and "threads=1" in c for c in commands)
    assert not (tmp_path / "runs").exists()
    rl_plasticity.execute([tiny], range(2), 2, tmp_path / "runs", tmp_path / "out", dry_run=True, methods=["fire"])
    assert [c for c in capsys.readouterr().out.splitlines() if "reinit=none" in c] == []


def fake_run(job, config: dict, scalars: dict[str, dict[int, float]], seconds: float = 12.0) -> None:
    """A finished run directory as train.py and the bench leave it: config.yaml, events, the DONE record."""
    job.path.mkdir(parents=True)
    (job.path / "config.yaml").write_text(yaml.safe_dump(config))
    writer = SummaryWriter(str(job.path))
    for tag, values in scalars.items():
        for step, value in values.items():
            writer.add_scalar(tag, value, step)
    writer.close()
    (job.path / DONE).write_text(json.dumps({"seconds": seconds, "command": shlex.join(job.command)}))


def config_of(job, env: dict, total: int = 1000) -> dict:
    return {"seed": job.seed, "total_env_steps": total, "agent": {"name": "sac"}, "env": env,
            "reinit": {"name": "none" if job.method == "none" else "fire", "at_env_steps": [500],
                       "every_env_steps": None, "trigger": None}}


def test_tables_from_finished_runs(tiny, tmp_path):
    _, jobs = rl_plasticity.jobs_of(tiny, range(5), tmp_path / "runs")
    finals = {}
    for job in jobs:
        finals[job.method, job.seed] = final = 10.0 * job.seed + (100.0 if job.method == "fire" else 0.0)
        fake_run(job, config_of(job, {"name": "pendulum", "suite": "gymnasium"}),
                 {"eval/episodic_return": {500: 0.0, 1000: final}})
    table = rl_plasticity.write_results([tiny], {"tiny": jobs}, tmp_path / "out", reps=500)
    assert len(table) == 10
    assert {(r.method, r.seed): r.score for r in table.itertuples()} == finals
    assert {(r.method, r.seed): r.eval_mean for r in table.itertuples()} == {k: v / 2 for k, v in finals.items()}
    assert all(r.seconds == 12.0 and f"seed={r.seed}" in r.command for r in table.itertuples())
    markdown = (tmp_path / "out" / "rl_plasticity.md").read_text()
    # Scores 0, 10, 20, 30, 40 (+100 for fire): mean 20 (120), IQM of the middle half 10, 20, 30: 20 (120).
    assert "| none | 5 | 1 | 20 | [" in markdown and "| fire | 5 | 1 | 120 | [" in markdown
    curves = markdown.split("The mean of each run's evaluations")[1]  # the second table: evaluations 0 and final
    assert "| none | 5 | 1 | 10 | [" in curves and "| fire | 5 | 1 | 60 | [" in curves
    row = next(line for line in markdown.splitlines() if line.startswith("| none"))
    _, _, _, _, mean, mean_ci, iqm, iqm_ci, _ = row.split("|")
    low, high = map(float, mean_ci.strip(" []").split(","))
    assert float(iqm) == 20 and low < 20 < high and high - low < 40
    assert (tmp_path / "out" / "rl_plasticity_tiny.png").stat().st_size > 0


def test_a_protocol_written_alone_keeps_the_other_protocols_rows_and_sections(tiny, tmp_path):
    other = Protocol("other", TINY)
    made = {}
    for protocol, final in ((tiny, 5.0), (other, 7.0)):
        _, jobs = rl_plasticity.jobs_of(protocol, range(1), tmp_path / "runs" / protocol.name)
        made[protocol.name] = jobs
        for job in jobs:
            fake_run(job, config_of(job, {"name": "pendulum", "suite": "gymnasium"}),
                     {"eval/episodic_return": {1000: final}})
    out = tmp_path / "out"
    rl_plasticity.write_results([tiny, other], made, out, reps=100)
    both = (out / "rl_plasticity.md").read_text()
    rl_plasticity.scalars_of.cache_clear()
    for job in made["tiny"]:  # tiny's runs get another score; other's files must not be touched
        shutil.rmtree(job.path)
        fake_run(job, config_of(job, {"name": "pendulum", "suite": "gymnasium"}), {"eval/episodic_return": {1000: 9.0}})
    rl_plasticity.write_results([tiny], {"tiny": made["tiny"]}, out, reps=100)
    table = pd.read_csv(out / "rl_plasticity.csv")
    assert table.groupby("protocol")["score"].apply(set).to_dict() == {"tiny": {9.0}, "other": {7.0}}
    markdown = (out / "rl_plasticity.md").read_text()

    def section(text: str, name: str) -> str:
        return text.split(f"## {name}\n")[1].split("\n## ")[0]

    assert section(markdown, "other") == section(both, "other")
    assert "| none | 1 | 1 | 9 |" in section(markdown, "tiny") and "| none | 1 | 1 | 5 |" not in markdown
    assert markdown.count("# RL plasticity protocols") == 1 and markdown.index("## other") < markdown.index("## tiny")


def test_interventions_are_listed_per_run_and_the_trigger_summed_up(monkeypatch, tmp_path):
    monkeypatch.setattr(rl_plasticity, "METHODS", {"none": ("reinit=none",), "fire_adaptive": ("reinit=fire",)})
    protocol = Protocol("adaptive", TINY, signal="dfi")
    _, jobs = rl_plasticity.jobs_of(protocol, range(2), tmp_path / "runs")
    fired = {("fire_adaptive", 0): {300: 4.5e6, 700: 5.0e6}}  # seed 1's trigger never fired
    for job in jobs:
        events = fired.get((job.method, job.seed), {})
        fake_run(job, config_of(job, {"name": "pendulum", "suite": "gymnasium"}),
                 {"eval/episodic_return": {1000: 1.0}, "reinit/event": dict.fromkeys(events, 1.0),
                  "reinit/trigger_value": events})
    table = rl_plasticity.write_results([protocol], {"adaptive": jobs}, tmp_path / "out", reps=200)
    assert {(r.method, r.seed): r.interventions for r in table.fillna("").itertuples()} == {
        ("none", 0): "", ("none", 1): "", ("fire_adaptive", 0): "300;700", ("fire_adaptive", 1): ""}
    assert ("`fire_adaptive` (reinit.trigger=dfi) fired in 1 of 2 runs, at env step (signal): "
            "seed 0: 300 (4.5e+06), 700 (5e+06).") in (tmp_path / "out" / "rl_plasticity.md").read_text()


def test_stage1_runs_get_csv_rows_but_stay_out_of_the_tables(monkeypatch, tmp_path):
    # Two-stage protocols: a branch's command loads the stage-1 checkpoint, so the CSV carries the stage-1
    # run's command too; the tables and figures compare methods only.
    monkeypatch.setattr(rl_plasticity, "METHODS", METHODS)
    two_stage = Protocol("two", TINY, stage1_env_steps=150, stage1=("env.max_episode_steps=50",))
    stage1, jobs = rl_plasticity.jobs_of(two_stage, range(2), tmp_path / "runs")
    for job in [*stage1, *jobs]:
        fake_run(job, config_of(job, {"name": "pendulum", "suite": "gymnasium"}),
                 {"eval/episodic_return": {150: -900.0 if job in stage1 else -100.0 * (job.seed + 1)}})
    table = rl_plasticity.write_results([two_stage], {"two": jobs}, tmp_path / "out", reps=200,
                                        stage1_jobs={"two": stage1})
    assert sorted(table["method"]) == ["fire", "fire", "none", "none", "stage1", "stage1"]
    assert set(table[table["method"] == "stage1"]["score"]) == {-900.0}
    assert all("load_checkpoint=" in c for c in table[table["method"] != "stage1"]["command"])
    assert "stage1" not in (tmp_path / "out" / "rl_plasticity.md").read_text()


def test_continual_scores_are_end_of_turn_returns_relative_to_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(rl_plasticity, "METHODS", {"none": ("reinit=none",)})
    turn, games = 100, ["breakout", "freeway", "asterix"]
    references = {f"fresh/{g}": (f"env.game={g}",) for g in games}
    protocol = Protocol("cont", ("env=x",), score=end_of_turn_returns, references=lambda cfg: references,
                        normalize_by="fresh")
    monkeypatch.setattr(rl_plasticity, "compose", lambda *overrides: {})
    _, jobs = rl_plasticity.jobs_of(protocol, range(2), tmp_path / "runs")
    for job in jobs:
        if job.method == "none":
            returns = {50: 99.0, 80: 1.0, 95: 3.0, 180: 5.0, 290: 7.0, 380: 2.0, 399: 4.0}
            env = {"name": "minatar-continual", "games": games, "switch_env_steps": turn}
            fake_run(job, config_of(job, env, total=4 * turn), {"charts/episodic_return": returns})
        else:  # a fresh run of one turn on one game: the episodes ending in its last quarter count
            game = job.run_dir.parent.name
            last = {"breakout": 8.0, "freeway": 6.0, "asterix": 0.0}[game]  # fresh asterix learnt nothing
            fake_run(job, config_of(job, {"name": f"minatar-{game}", "game": game}, total=turn),
                     {"charts/episodic_return": {10: 99.0, 90: last}})
    # turns: breakout (0, 100], freeway (100, 200], asterix (200, 300], breakout (300, 400]
    # (its last turn's last 25 env steps)
    assert end_of_turn_returns(jobs[0].path) == {"breakout": 3.0, "freeway": 5.0, "asterix": 7.0}
    table = rl_plasticity.scores_table(protocol, jobs)
    none = table[table["method"] == "none"].iloc[0]
    assert none["tasks"] == {"breakout": 3.0 / 8.0, "freeway": 5.0 / 6.0}  # asterix: nothing to divide by
    assert none["score"] == pytest.approx(np.mean([3.0 / 8.0, 5.0 / 6.0]))
    assert table.attrs["unscored"] == ["asterix"]
    assert set(table["method"]) == {"none", "fresh"}
    fresh = table[table["method"] == "fresh"]
    assert sorted(fresh["score"].fillna(-1.0)) == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]  # fresh asterix: no score


def test_a_run_another_process_holds_is_skipped_and_its_branches_wait(monkeypatch, tmp_path, capsys):
    from loop import rundir

    launched = []
    monkeypatch.setattr(rl_plasticity.subprocess, "run", lambda command, **kw: launched.append(command))
    monkeypatch.setattr(rl_plasticity, "write_results", lambda *args, **kwargs: None)
    monkeypatch.setattr(rl_plasticity, "METHODS", METHODS)
    two_stage = Protocol("two_stage", TINY, stage1_env_steps=200)
    stage1 = rl_plasticity.jobs_of(two_stage, [0], tmp_path)[0][0]
    stage1.path.mkdir(parents=True)
    with rundir.locked(stage1.path):  # as a second `bench.rl_plasticity` running stage 1 would
        assert rl_plasticity.run(stage1) is None
        rl_plasticity.execute([two_stage], [0], 1, tmp_path, tmp_path)
    assert launched == []
    assert "skipped, running in another process" in capsys.readouterr().out
    assert not rl_plasticity.in_use(stage1)


@pytest.mark.slow
def test_results_command_writes_csv_rows_and_table_and_skips_finished_runs(tiny, tmp_path, monkeypatch):
    runs, out = tmp_path / "runs", tmp_path / "out"
    assert rl_plasticity.execute([tiny], range(2), 2, runs, out, reps=200) == 0
    table = pd.read_csv(out / "rl_plasticity.csv")
    assert list(table.columns) == ["protocol", "method", "seed", "score", "eval_mean", "tasks", "interventions",
                                   "command", "seconds"]
    assert sorted(zip(table["method"], table["seed"], strict=True)) == [("fire", 0), ("fire", 1), ("none", 0),
                                                                        ("none", 1)]
    for row in table.itertuples():
        run_dir = runs / "tiny" / row.method / f"seed{row.seed}"
        assert f"run_dir={run_dir}" in row.command and f"seed={row.seed}" in row.command
        assert row.tasks == f"return={row.score:.4g}" and row.seconds > 0
        assert str(row.interventions) == ("200.0" if row.method == "fire" else "nan")  # read back as floats
        # The score is the run's last evaluation, as its TensorBoard log holds it.
        assert row.score == pytest.approx(rl_plasticity.final_evaluation(run_dir)["return"])
    markdown = (out / "rl_plasticity.md").read_text()
    assert "## tiny" in markdown and "| method | runs | tasks | mean | mean 95% CI | IQM | IQM 95% CI |" in markdown
    for method in METHODS:
        assert f"| {method} | 2 | 1 |" in markdown
    assert (out / "rl_plasticity_tiny.png").stat().st_size > 0

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was launched again")

    monkeypatch.setattr(rl_plasticity.subprocess, "run", must_not_run)
    assert rl_plasticity.execute([tiny], range(2), 2, runs, out, reps=200) == 0
    assert pd.read_csv(out / "rl_plasticity.csv").equals(table)


@pytest.mark.parametrize("name", list(rl_plasticity.PROTOCOLS))
def test_every_protocol_run_composes_and_validates(name, tmp_path):
    """Each run of each protocol (one seed) is a valid train.py command: its overrides compose and pass
    start-up validation, so a full results run cannot fail on a config after an hour."""
    from loop.config import CONFIG_DIR, compose, validate

    if name != "priming_sac_hopper" and not (CONFIG_DIR / "experiment" / "minatar_dqn.yaml").is_file():
        pytest.skip("the MinAtar suite (configs/experiment/minatar_dqn.yaml) is not in this checkout")
    stage1, jobs = rl_plasticity.jobs_of(rl_plasticity.PROTOCOLS[name], [0], tmp_path)
    for job in [*stage1, *jobs]:
        cfg = compose(*job.overrides, f"seed={job.seed}", f"run_dir={job.run_dir}", "resume=auto")
        validate(cfg)
        if job.method == rl_plasticity.ADAPTIVE:
            assert cfg["reinit"]["trigger"] == rl_plasticity.PROTOCOLS[name].signal
            assert not cfg["reinit"]["at_env_steps"] and cfg["reinit"]["every_env_steps"] is None
