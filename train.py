"""Train an agent: `python train.py agent=sac env=h1-walk reinit=fire reinit.at_env_steps=[500000]`.

Hydra composes configs/config.yaml with the chosen groups (agent/, env/, reinit/, experiment/);
`--help` lists them, `--cfg job` prints the composed config. Resume a killed run with
`resume=<run dir>`; branch a new run from a checkpoint with `load_checkpoint=<file.pt>`.
`resume=auto` (cluster sweeps, requeued jobs) continues `run_dir` if it holds checkpoints of the same
config, and starts it otherwise; it needs a fixed `run_dir` (no ${now:...}).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if "DISPLAY" not in os.environ:  # headless: offscreen MuJoCo rendering (eval videos) through EGL
    os.environ.setdefault("MUJOCO_GL", "egl")

import hydra  # noqa: E402  (after MUJOCO_GL: MuJoCo reads it when first imported)
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import envs  # noqa: F401  (registers the H1 tasks with gymnasium)
from loop import checkpoint
from loop.config import ConfigError, key_docs, upgrade_saved_config, validate
from loop.runner import NonFiniteError, Trainer

OmegaConf.register_new_resolver("key_docs", key_docs)  # hydra.help.footer: the typed keys' docs

# Overrides that may accompany resume=...; everything else comes from the run's saved config.
RESUME_OVERRIDES = ("resume", "quiet", "device")


def _fresh_run_dir(path: str) -> Path:
    run_dir, n = Path(path), 1
    while run_dir.exists():
        run_dir, n = Path(f"{path}-{n}"), n + 1
    return run_dir


def _saved_config(run_dir: Path) -> dict:
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"resume={str(run_dir)!r} has no config.yaml; give a run directory made by train.py")
    return upgrade_saved_config(OmegaConf.to_container(OmegaConf.load(saved), resolve=True))


def _resume_config(run_dir: Path, composed: dict) -> dict:
    extra = [o for o in HydraConfig.get().overrides.task if o.split("=")[0].lstrip("+~") not in RESUME_OVERRIDES]
    if extra:
        raise ConfigError(f"resume takes the run's saved config; drop these overrides: {' '.join(extra)} "
                          f"(allowed with resume: {', '.join(RESUME_OVERRIDES)})")
    return {**_saved_config(run_dir), **{k: composed[k] for k in RESUME_OVERRIDES}}


def _auto_resume(dict_cfg: DictConfig, composed: dict) -> Path | None:
    """resume=auto: the fixed run_dir if it already holds checkpoints of this very config, else None."""
    if "${now:" in OmegaConf.to_container(dict_cfg, resolve=False)["run_dir"]:
        raise ConfigError("resume=auto needs a fixed run_dir (it contains ${now:...}); "
                          "e.g. run_dir=runs/${env.name}/${agent.name}-${reinit.name}/seed${seed}")
    run_dir = Path(composed["run_dir"])
    if not checkpoint.list_checkpoints(run_dir / "checkpoints"):
        return None
    saved = _saved_config(run_dir)
    differs = sorted(k for k in composed.keys() | saved.keys()
                     if k not in RESUME_OVERRIDES and composed.get(k) != saved.get(k))
    if differs:
        raise ConfigError(f"resume=auto: run_dir={str(run_dir)!r} holds a run with a different config "
                          f"(keys {', '.join(differs)}); pick another run_dir")
    return run_dir


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(dict_cfg: DictConfig) -> dict:
    cfg = OmegaConf.to_container(dict_cfg, resolve=True)
    try:
        run_dir = None
        if cfg["resume"] == "auto":
            run_dir = _auto_resume(dict_cfg, cfg)
            if run_dir:
                cfg = {**_saved_config(run_dir), **{k: cfg[k] for k in RESUME_OVERRIDES}}
        elif cfg["resume"]:
            run_dir = Path(cfg["resume"])
            cfg = _resume_config(run_dir, cfg)
        validate(cfg)
        if cfg["load_checkpoint"] and not Path(cfg["load_checkpoint"]).is_file():
            raise ConfigError(f"load_checkpoint={cfg['load_checkpoint']!r} is not a file")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)

    if run_dir:
        path, state = checkpoint.load_latest(run_dir / "checkpoints")
        if state["env_steps"] >= cfg["total_env_steps"]:
            print(f"{run_dir} already finished at env step {state['env_steps']}", flush=True)
            return {}
        trainer = Trainer(cfg, run_dir)
        trainer.resume(state)
        print(f"resuming {run_dir} from {path.name} at env step {trainer.env_steps}", flush=True)
    else:
        # A requeued resume=auto job that had not checkpointed yet restarts in place.
        in_place = cfg["resume"] == "auto"
        run_dir = Path(cfg["run_dir"]) if in_place else _fresh_run_dir(cfg["run_dir"])
        trainer = Trainer(cfg, run_dir)
        if in_place:
            trainer.purge_step = 0  # TensorBoard drops what an earlier attempt logged here
        run_dir.mkdir(parents=True, exist_ok=in_place)
        OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")
        if cfg["load_checkpoint"]:
            trainer.branch_from(checkpoint.load(Path(cfg["load_checkpoint"])))
        print(f"run directory: {run_dir}", flush=True)
    try:
        result = trainer.run()
    except (NonFiniteError, checkpoint.CheckpointWriteError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    if trainer.stop_signal is not None:
        # Stopped early, checkpoint written: exit as a process killed by that signal reports (128 + N), not
        # as a finished run. Under hydra/launcher=slurm this matters: a normal return would make submitit
        # record the job as done when SLURM requeues it (`scontrol requeue`, preemption), and the sweep
        # would end before the requeued attempt ran.
        sys.exit(128 + trainer.stop_signal)
    return result


if __name__ == "__main__":
    main()
