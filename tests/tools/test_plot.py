"""tools.plot on synthetic run directories: grouping, CIs, IQM, HNS, tables and the CLI's outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from envs.atari.scores import REFERENCE_SCORES
from tools import plot
from tools.runs import find_runs, load_run
from tools.stats import bootstrap_mean_ci, iqm

TAG = "eval/episodic_return"


def make_run(root: Path, env: str, agent: str, reinit: str, seed: int, values: dict[int, float],
             *, game: str | None = None, at: tuple[int, ...] = (), logged_events: tuple[int, ...] = (),
             total: int = 1000, extra: dict | None = None) -> Path:
    """A run directory like train.py's: config.yaml plus an event file with TAG (and reinit/event)."""
    path = root / env / f"{agent}-{reinit}" / f"seed{seed}"
    path.mkdir(parents=True)
    env_cfg = {"name": env, "suite": "atari" if game else "gymnasium"}
    if game:
        env_cfg["game"] = game
    config = {"seed": seed, "total_env_steps": total, "agent": {"name": agent}, "env": env_cfg,
              "reinit": {"name": reinit, "at_env_steps": list(at), "every_env_steps": None}, **(extra or {})}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    writer = SummaryWriter(str(path))
    for step, value in values.items():
        writer.add_scalar(TAG, value, step)
    for step in logged_events:
        writer.add_scalar("reinit/event", 1.0, step)
    writer.close()
    return path


def test_iqm_matches_hand_computation():
    # 8 scores sorted: 1 2 3 4 5 6 7 100; the middle half is 3 4 5 6 -> 4.5 (the outlier 100 is cut).
    scores = np.array([[5.0, 1.0], [100.0, 3.0], [2.0, 6.0], [7.0, 4.0]])
    assert iqm(scores) == pytest.approx(4.5)


def test_bootstrap_ci_contains_true_mean_and_shrinks_with_seeds():
    # Same spread (mean 10, sd 2) with 8 and 128 seeds: the CI width should scale like 1/sqrt(seeds).
    few = np.tile([8.0, 12.0], 4)[:, None]
    many = np.tile([8.0, 12.0], 64)[:, None]
    mean_few, low_few, high_few = bootstrap_mean_ci(few)
    mean_many, low_many, high_many = bootstrap_mean_ci(many)
    assert low_few[0] < 10.0 < high_few[0]
    assert low_many[0] < 10.0 < high_many[0]
    assert low_few[0] <= mean_few[0] <= high_few[0]
    assert (high_many - low_many)[0] == pytest.approx(0.25 * (high_few - low_few)[0], rel=0.2)
    assert mean_few[0] == mean_many[0] == 10.0


def test_bootstrap_ci_ignores_missing_points_and_one_seed_has_no_spread():
    values = np.array([[1.0, 2.0], [3.0, np.nan]])
    mean, low, high = bootstrap_mean_ci(values)
    np.testing.assert_allclose(mean, [2.0, 2.0])
    assert low[1] == high[1] == 2.0  # only one seed reached the second point
    mean1, low1, high1 = bootstrap_mean_ci(np.array([3.0]))
    assert mean1 == low1 == high1 == 3.0


def test_bootstrap_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean_ci(np.ones(3), confidence=95)


def test_grouping_curves_and_final_table(tmp_path):
    for seed, offset in enumerate([0.0, 2.0, 4.0]):
        make_run(tmp_path, "hopper", "sac", "fire", seed, {100: 1 + offset, 200: 5 + offset},
                 at=(150,), logged_events=(150,))
    make_run(tmp_path, "hopper", "sac", "none", 0, {100: 1.0, 200: 2.0})
    make_run(tmp_path, "walker", "sac", "none", 0, {100: 3.0, 300: 9.0})
    curves = plot.load_curves([tmp_path])
    assert len(curves) == 5
    table = plot.learning_curves(curves)
    assert sorted(set(zip(table["env"], table["method"], strict=True))) == [
        ("hopper", "sac+fire"), ("hopper", "sac+none"), ("walker", "sac+none")]
    fire = table[table["method"] == "sac+fire"].set_index("step")
    assert fire.loc[200, "mean"] == pytest.approx(7.0)  # (5 + 7 + 9) / 3
    assert fire.loc[200, "seeds"] == 3
    assert fire.loc[200, "low"] < 7.0 < fire.loc[200, "high"]
    assert next(c for c in curves if c.run.intervention == "fire").interventions == (150,)

    finals = plot.final_scores(curves, window=2)
    row = finals[(finals["method"] == "sac+fire") & (finals["seed"] == 1)].iloc[0]
    assert row["final"] == pytest.approx((3 + 7) / 2) and row["step"] == 200
    grouped = plot.final_table(plot.final_scores(curves)).set_index(["env", "method"])
    assert grouped.loc[("hopper", "sac+fire"), "seeds"] == 3
    assert grouped.loc[("hopper", "sac+fire"), "final_mean"] == pytest.approx(7.0)
    assert grouped.loc[("walker", "sac+none"), "final_mean"] == pytest.approx(9.0)


def test_n_and_cis_count_distinct_seeds_not_runs(tmp_path):
    # Seed 0 three times (say, re-launched copies) and seed 1 once: two seeds, seed 0 averaged first.
    for copy, value in enumerate([1.0, 2.0, 3.0]):
        make_run(tmp_path / f"copy{copy}", "hopper", "sac", "fire", 0, {100: value})
    make_run(tmp_path, "hopper", "sac", "fire", 1, {100: 6.0})
    curves = plot.load_curves([tmp_path])
    assert len(curves) == 4
    (point,) = plot.learning_curves(curves).itertuples()
    assert point.seeds == 2 and point.mean == pytest.approx((2.0 + 6.0) / 2)
    (row,) = plot.final_table(plot.final_scores(curves)).itertuples()
    assert row.seeds == 2 and row.final_mean == pytest.approx(4.0)


def test_runs_without_the_tag_are_skipped_with_a_warning(tmp_path, capsys):
    make_run(tmp_path, "hopper", "sac", "none", 0, {100: 1.0})
    empty = make_run(tmp_path, "hopper", "sac", "none", 1, {})  # killed before its first evaluation
    (curve,) = plot.load_curves([tmp_path])
    assert curve.run.seed == 0
    assert capsys.readouterr().err.strip() == f"warning: skipped: tag {TAG!r} not in run {str(empty)!r}; " \
                                              "available tags: none"


def drawn_lines(monkeypatch, tmp_path, runs):
    """{legend label: its line} of the figure draw_curves builds from runs (it saves and closes it)."""
    figures = []
    monkeypatch.setattr(plot.plt, "close", figures.append)
    curves = plot.load_curves([runs])
    plot.draw_curves(plot.learning_curves(curves), curves, TAG, tmp_path / "f.png")
    (ax,) = figures[0].axes
    handles, labels = ax.get_legend_handles_labels()
    # An error bar's legend handle is its container; the marker line comes first in it.
    return {label: getattr(handle, "lines", [handle])[0] for handle, label in zip(handles, labels, strict=True)}


def test_single_points_get_a_marker_and_each_method_keeps_its_colour(tmp_path, monkeypatch):
    make_run(tmp_path, "hopper", "sac", "fire", 0, {100: 1.0})  # one evaluation: no line to draw
    make_run(tmp_path, "hopper", "sac", "none", 0, {100: 1.0, 200: 2.0})
    lines = drawn_lines(monkeypatch, tmp_path, tmp_path)
    assert lines["sac+fire (n=1)"].get_marker() == "o" and len(lines["sac+fire (n=1)"].get_xdata()) == 1
    none_colour = lines["sac+none (n=1)"].get_color()
    assert lines["sac+fire (n=1)"].get_color() != none_colour

    # Another figure without FIRE: the baseline keeps its colour (matplotlib's cycle would have shifted it).
    other = tmp_path / "other"
    for reinit in ("none", "reset", "snp"):
        make_run(other, "walker", "dqn", reinit, 0, {100: 1.0, 200: 2.0})
    colours = {label.split()[0]: line.get_color() for label, line in drawn_lines(monkeypatch, other, other).items()}
    assert colours["dqn+none"] == none_colour and len(set(colours.values())) == 3
    assert plot.method_colour("sac+brand_new") == plot.method_colour("dqn+brand_new")


def test_primed_and_branched_runs_are_their_own_groups_beside_the_plain_reference(tmp_path, monkeypatch):
    # bench.rl_plasticity: primed runs beside an unprimed reference, branches beside a fresh run; the
    # same intervention would otherwise pool them into one curve.
    for seed in (0, 1):
        make_run(tmp_path / "p", "hopper", "sac", "none", seed, {100: 1.0, 200: 2.0}, extra={"priming_updates": 50})
        make_run(tmp_path / "u", "hopper", "sac", "none", seed, {100: 5.0, 200: 6.0}, extra={"priming_updates": 0})
        make_run(tmp_path / "b", "hopper", "sac", "fire", seed, {100: 3.0, 200: 4.0},
                 extra={"priming_updates": 50, "load_checkpoint": "stage1.pt"})
    assert {load_run(p).method for p in find_runs([tmp_path])} == {"sac+none primed", "sac+none",
                                                                  "sac+fire primed branched"}
    lines = drawn_lines(monkeypatch, tmp_path, tmp_path)
    assert lines["sac+none primed (n=2)"].get_color() == lines["sac+none (n=2)"].get_color()
    assert lines["sac+none (n=2)"].get_linestyle() == "--" and lines["sac+none primed (n=2)"].get_linestyle() == "-"
    assert lines["sac+fire primed branched (n=2)"].get_color() == plot.method_colour("sac+fire")


def test_interventions_fall_back_to_the_config_schedule(tmp_path):
    path = make_run(tmp_path, "hopper", "sac", "reset", 0, {100: 1.0}, at=(400, 2000), total=1000)
    config = yaml.safe_load((path / "config.yaml").read_text())
    config["reinit"]["every_env_steps"] = 300
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (curve,) = plot.load_curves([path])
    assert curve.interventions == (300, 400, 600, 900)  # 2000 is past total_env_steps


def test_hns_formula_against_the_table(tmp_path):
    random, human = REFERENCE_SCORES["asterix"]
    assert (random, human) == (210.0, 8503.3)
    make_run(tmp_path, "asterix", "dqn", "none", 0, {100: 4356.65}, game="asterix")
    from tools.atari import add_hns

    finals = add_hns(plot.final_scores(plot.load_curves([tmp_path])))
    assert finals["hns"].iloc[0] == pytest.approx((4356.65 - 210.0) / (8503.3 - 210.0))  # = 0.5


def test_atari_aggregates_match_direct_computation():
    from tools.atari import aggregate_scores, performance_profiles

    hns = np.array([[0.1, 1.0, 3.0], [0.2, 2.0, 4.0], [0.3, 0.0, 5.0], [0.4, 1.5, 9.0]])  # (runs, games)
    aggregates = aggregate_scores({"dqn+fire": hns}, reps=500).set_index("metric")
    assert aggregates.loc["IQM", "estimate"] == pytest.approx(iqm(hns))
    assert aggregates.loc["median", "estimate"] == pytest.approx(np.median(hns.mean(axis=0)))  # per-game means
    assert aggregates.loc["mean", "estimate"] == pytest.approx(hns.mean())
    for metric in ("IQM", "median", "mean"):
        assert aggregates.loc[metric, "low"] <= aggregates.loc[metric, "estimate"] <= aggregates.loc[metric, "high"]
    taus = np.array([0.0, 1.0, 4.5])
    points, intervals = performance_profiles({"m": hns}, taus, reps=200)
    np.testing.assert_allclose(points["m"], [11 / 12, 6 / 12, 2 / 12])
    assert intervals["m"].shape == (2, 3)


def test_bootstrap_intervals_repeat_for_a_seed_and_leave_numpy_global_rng_alone():
    import pandas as pd

    from tools.atari import aggregate_scores, performance_profiles

    scores = {"a": np.array([[1.0], [5.0], [3.0], [9.0], [2.0]]), "b": np.array([[4.0], [2.0], [8.0], [1.0], [7.0]])}
    np.random.seed(123)  # noqa: NPY002
    outside = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    first = aggregate_scores(scores, reps=300)
    assert np.random.random() == outside  # noqa: NPY002
    for _ in range(3):  # the same CIs however the global RNG stands
        np.random.random(7)  # noqa: NPY002
        pd.testing.assert_frame_equal(aggregate_scores(scores, reps=300), first)
    assert not aggregate_scores(scores, reps=300, seed=1).equals(first)
    taus = np.array([2.0, 4.0])
    np.testing.assert_array_equal(performance_profiles(scores, taus, reps=300)[1]["a"],
                                  performance_profiles(scores, taus, reps=300)[1]["a"])


def test_hns_matrices_truncate_to_equal_runs_per_game():
    import pandas as pd

    from tools.atari import hns_matrices

    finals = pd.DataFrame({"method": ["a"] * 3, "game": ["pong", "pong", "breakout"], "seed": [1, 0, 0],
                           "hns": [0.7, 0.5, 0.2]})
    with pytest.warns(UserWarning, match="1 runs left out"):
        matrices = hns_matrices(finals)
    np.testing.assert_allclose(matrices["a"], [[0.2, 0.5]])  # games sorted: breakout, pong; seed 0 kept
    with pytest.raises(ValueError, match="no runs on games"), pytest.warns(UserWarning):
        hns_matrices(pd.concat([finals, pd.DataFrame({"method": ["b"], "game": ["pong"], "seed": [0], "hns": [1.0]})]))


def test_cli_writes_png_csv_and_markdown(tmp_path):
    runs = tmp_path / "runs"
    for game, (random, human) in [("pong", REFERENCE_SCORES["pong"]), ("breakout", REFERENCE_SCORES["breakout"])]:
        for seed in range(2):
            for reinit, fraction in [("none", 0.25), ("fire", 0.5)]:
                score = random + fraction * (human - random)
                make_run(runs, game, "dqn", reinit, seed, {100: random, 200: score}, game=game,
                         at=(150,) if reinit == "fire" else ())
    out = tmp_path / "figs" / "atari.png"
    assert plot.main([str(runs), "--out", str(out), "--atari", "--reps", "200"]) == 0
    for path in [out, out.with_suffix(".csv"), out.with_suffix(".md"), tmp_path / "figs" / "atari_aggregates.png",
                 tmp_path / "figs" / "atari_aggregates.csv"]:
        assert path.is_file() and path.stat().st_size > 0, path
    with out.with_suffix(".csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    fire = [float(r["hns"]) for r in rows if r["intervention"] == "fire"]
    np.testing.assert_allclose(fire, 0.5)
    markdown = out.with_suffix(".md").read_text()
    assert "| pong | dqn+fire | 2 |" in markdown and "IQM" in markdown


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert plot.main([str(tmp_path), "--out", str(tmp_path / "f.png")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no run directories (with config.yaml) under: {tmp_path}"
    make_run(tmp_path, "hopper", "sac", "none", 0, {100: 1.0})
    assert plot.main([str(tmp_path), "--out", str(tmp_path / "f.png"), "--tag", "eval/missing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tag 'eval/missing' not in run" in err[0] and "available tags: " + TAG in err[0]
    assert plot.main([str(tmp_path), "--out", str(tmp_path / "f.png"), "--atari"]) == 2
    assert "not Atari runs" in capsys.readouterr().err


def test_find_runs_and_missing_config_key(tmp_path):
    path = make_run(tmp_path, "hopper", "sac", "none", 3, {1: 1.0})
    assert find_runs([tmp_path]) == [path] and find_runs([path]) == [path]
    assert load_run(path).seed == 3
    (path / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "env": {"name": "x"}}))
    with pytest.raises(ValueError, match="missing key 'reinit'"):
        load_run(path)
