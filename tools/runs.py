"""Run directories as train.py writes them: find them, read their config.yaml and their scalars.

A run directory holds `config.yaml` (the resolved Hydra config) and TensorBoard event files whose
x-axis is env steps. Event files in subdirectories (none are written today) are not part of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tbparse import SummaryReader

CONFIG = "config.yaml"
INTERVENTION_TAG = "reinit/event"


@dataclass(frozen=True)
class Run:
    """One training run: where it is and what it compares (env x agent x intervention, seed)."""

    path: Path
    env: str  # env.name: the task shown as a panel (an Atari game's ROM id for suite=atari)
    agent: str
    intervention: str  # reinit.name ("none" for the baseline), with "@<signal>" when an adaptive trigger fires it
    seed: int
    suite: str
    game: str | None  # the ALE ROM id (env.game) for suite=atari, for human-normalised scores
    scheduled_steps: tuple[int, ...]  # intervention env steps from the config, up to total_env_steps
    # What else sets the run apart from a plain run of the method: "primed" (priming_updates > 0),
    # "branched" (load_checkpoint: stage 2 of a two-stage run), both, or "".
    variant: str = ""

    @property
    def method(self) -> str:
        """The curve label: agent and intervention, and the variant if any, e.g. "dqn+fire branched"."""
        return f"{self.agent}+{self.intervention}" + (f" {self.variant}" if self.variant else "")


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Every directory holding a config.yaml at or below the given paths, sorted and deduplicated."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise ValueError(f"run path {str(path)!r} does not exist")
        if (path / CONFIG).is_file():
            found.add(path)
        found.update(config.parent for config in path.rglob(CONFIG))
    return sorted(found)


def _get(config: dict, dotted: str, path: Path):
    node = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"{path / CONFIG}: missing key {dotted!r}")
        node = node[key]
    return node


def _scheduled_steps(reinit: dict, total_env_steps: int) -> tuple[int, ...]:
    if reinit.get("name", "none") == "none":
        return ()
    steps = {int(s) for s in reinit.get("at_env_steps") or ()}
    every = reinit.get("every_env_steps")
    if every:
        steps.update(range(int(every), total_env_steps + 1, int(every)))
    return tuple(sorted(s for s in steps if s <= total_env_steps))


def load_run(path: str | Path) -> Run:
    """Read a run directory's config.yaml; ValueError naming the file and key when one is missing."""
    path = Path(path)
    config_file = path / CONFIG
    if not config_file.is_file():
        raise ValueError(f"{str(path)!r} is not a run directory: it has no {CONFIG}")
    config = yaml.safe_load(config_file.read_text())
    if not isinstance(config, dict):
        raise ValueError(f"{config_file}: not a mapping")
    reinit = _get(config, "reinit", path)
    trigger = reinit.get("trigger")
    suite = str(config["env"].get("suite", "gymnasium"))
    return Run(
        path=path,
        env=str(_get(config, "env.name", path)),
        agent=str(_get(config, "agent.name", path)),
        intervention=str(_get(config, "reinit.name", path)) + (f"@{trigger}" if trigger else ""),
        seed=int(_get(config, "seed", path)),
        suite=suite,
        game=str(_get(config, "env.game", path)) if suite == "atari" else None,
        scheduled_steps=_scheduled_steps(reinit, int(_get(config, "total_env_steps", path))),
        variant=" ".join(name for name, present in (("primed", int(config.get("priming_updates") or 0) > 0),
                                                     ("branched", bool(config.get("load_checkpoint"))))
                         if present),
    )


def read_scalars(path: str | Path) -> pd.DataFrame:
    """All scalars of the run's own event files: columns step (env steps), tag, value."""
    frame = SummaryReader(str(path), pivot=False, extra_columns={"dir_name"}).scalars
    if frame.empty:
        return pd.DataFrame({"step": pd.Series(dtype="int64"), "tag": pd.Series(dtype="str"),
                             "value": pd.Series(dtype="float64")})
    frame = frame[frame["dir_name"] == ""]
    return frame[["step", "tag", "value"]].reset_index(drop=True)


def curve(scalars: pd.DataFrame, tag: str, run: Path) -> pd.Series:
    """One tag's values indexed by env step (the last value wins where a resumed run repeated a step)."""
    rows = scalars[scalars["tag"] == tag]
    if rows.empty:
        available = ", ".join(sorted(scalars["tag"].unique())) or "none"
        raise ValueError(f"tag {tag!r} not in run {str(run)!r}; available tags: {available}")
    series = rows.groupby("step")["value"].last().astype("float64")
    series.name = tag
    return series


def intervention_steps(run: Run, scalars: pd.DataFrame) -> tuple[int, ...]:
    """Env steps at which the run intervened: the logged reinit/event steps, else the config's schedule
    (runs written before the event tag existed, or still short of their first intervention)."""
    logged = scalars.loc[scalars["tag"] == INTERVENTION_TAG, "step"]
    return tuple(sorted({int(s) for s in logged})) if not logged.empty else run.scheduled_steps


def align(curves: Sequence[pd.Series]) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-seed curves on the union of their env steps: (steps (T,), values (seeds, T)).

    A seed without a value at some step (a different eval cadence, or a shorter run) gets NaN there;
    nothing is interpolated, so each plotted mean is over the seeds that were actually evaluated.
    """
    frame = pd.concat(list(curves), axis=1, join="outer").sort_index()
    return frame.index.to_numpy(dtype=np.int64), frame.to_numpy(dtype=np.float64).T
