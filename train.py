"""Train an agent: `python train.py agent=sac env=h1-walk reinit=fire reinit.at_env_steps=[500000]`.

Hydra composes configs/config.yaml with the chosen groups (agent/, env/, reinit/, experiment/);
`--help` lists them, `--cfg job` prints the composed config. Resume a killed run with
`resume=<run dir>`; branch a new run from a checkpoint with `load_checkpoint=<file.pt>`.
`resume=auto` (cluster sweeps, requeued jobs) continues `run_dir` if it holds checkpoints of the same
config, and starts it otherwise; it needs a fixed `run_dir` (no ${now:...}).
"""

from __future__ import annotations

import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import envs  # noqa: F401  (registers the H1 tasks; headless, picks MuJoCo's OpenGL backend: envs/gl.py)
from loop import checkpoint, rundir
from loop.config import (
    ConfigError,
    check_compatibility,
    key_docs,
    resolve_auto,
    upgrade_saved_config,
    validate,
)
from loop.guard import NonFiniteError
from loop.runner import Trainer

OmegaConf.register_new_resolver("key_docs", key_docs, replace=True)  # hydra.help.footer: the typed keys' docs

# Overrides that may accompany resume=...; everything else comes from the run's saved config.
RESUME_OVERRIDES = ("resume", "quiet", "device")


def _saved_config(run_dir: Path, key: str = "resume") -> dict:
    saved = run_dir / "config.yaml"
    if not run_dir.is_dir():
        raise ConfigError(f"{key}={str(run_dir)!r} is not a directory; give a run directory made by train.py")
    if not saved.is_file():
        raise ConfigError(f"{key}={str(run_dir)!r} has no config.yaml; give a run directory made by train.py")
    try:
        saved_cfg = OmegaConf.to_container(OmegaConf.load(saved), resolve=True)
    except Exception as exc:  # YAML syntax and interpolation errors come as several types
        raise ConfigError(f"{key}={str(run_dir)!r}: its config.yaml cannot be read "
                          f"({' '.join(str(exc).split())[:160]})") from None
    try:
        return upgrade_saved_config(saved_cfg)
    except (KeyError, TypeError, AttributeError) as exc:  # parses, but is not a config train.py wrote
        raise ConfigError(f"{key}={str(run_dir)!r}: its config.yaml is not a train.py config (no {exc})") from None


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
    saved = _saved_config(run_dir, "run_dir")
    differs = sorted(k for k in composed.keys() | saved.keys()
                     if k not in RESUME_OVERRIDES and composed.get(k) != saved.get(k))
    if differs:
        raise ConfigError(f"resume=auto: run_dir={str(run_dir)!r} holds a run with a different config "
                          f"(keys {', '.join(differs)}); pick another run_dir")
    return run_dir


def _latest(run_dir: Path, key: str) -> tuple[Path, dict]:
    """The run's newest good checkpoint (damaged or foreign newer ones are named and set aside)."""
    directory = run_dir / "checkpoints"
    checkpoint.remove_temporary(directory)  # we hold the lock: no other process is writing there
    try:
        return checkpoint.load_latest(directory, report=lambda line: print(f"warning: {line}", file=sys.stderr))
    except FileNotFoundError:
        raise ConfigError(f"{key}={str(run_dir)!r} has no good checkpoint to resume (stopped before its first "
                          "one, or all damaged); start a new run instead") from None


def _branch_source(path: str) -> dict:
    if not Path(path).is_file():
        raise ConfigError(f"load_checkpoint={path!r} is not a file")
    try:
        return checkpoint.load(Path(path))
    except checkpoint.CheckpointError as error:
        raise ConfigError(f"load_checkpoint={path!r}: {error}") from None


def _writer_thread_errors(args: threading.ExceptHookArgs) -> None:
    """TensorBoard's writer thread fails on a full or read-only disk; the main thread then gets the same
    error on its next write and reports it in one line, so the thread's own traceback is dropped."""
    if not isinstance(args.exc_value, OSError):
        threading.__excepthook__(args)


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(dict_cfg: DictConfig) -> dict:
    with ExitStack() as stack:
        try:
            resolve_auto(dict_cfg)
            cfg = OmegaConf.to_container(dict_cfg, resolve=True)
            run_dir = None
            if cfg["resume"] == "auto":
                run_dir = _auto_resume(dict_cfg, cfg)
                if run_dir:
                    cfg = {**_saved_config(run_dir, "run_dir"), **{k: cfg[k] for k in RESUME_OVERRIDES}}
            elif cfg["resume"]:
                run_dir = Path(cfg["resume"])
                cfg = _resume_config(run_dir, cfg)
            validate(cfg)
            if run_dir:
                key = "resume" if cfg["resume"] != "auto" else "run_dir"
                stack.enter_context(rundir.locked(run_dir, key))
                path, state = _latest(run_dir, key)
            else:
                rundir.check_creatable(Path(cfg["run_dir"]))
                state = _branch_source(cfg["load_checkpoint"]) if cfg["load_checkpoint"] else None
                check_compatibility(cfg, state)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except OmegaConfBaseException as error:  # e.g. `resume=auto` with an interpolation that fails
            print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
            sys.exit(2)

        if run_dir:
            if state["env_steps"] >= cfg["total_env_steps"] and not state.get("eval_due"):
                print(f"{run_dir} already finished at env step {state['env_steps']}", flush=True)
                return {}
            trainer = Trainer(cfg, run_dir)
            trainer.resume(state)
            print(f"resuming {run_dir} from {path.name} at env step {trainer.env_steps}", flush=True)
        else:
            # A requeued resume=auto job that had not checkpointed yet restarts in place.
            in_place = cfg["resume"] == "auto"
            run_dir = Path(cfg["run_dir"]) if in_place else rundir.fresh(cfg["run_dir"])
            run_dir.mkdir(parents=True, exist_ok=in_place)
            try:
                stack.enter_context(rundir.locked(run_dir))
            except ConfigError as error:
                print(f"error: {error}", file=sys.stderr)
                sys.exit(2)
            checkpoint.remove_temporary(run_dir / "checkpoints")
            trainer = Trainer(cfg, run_dir)
            if in_place:
                trainer.purge_step = 0  # TensorBoard drops what an earlier attempt logged here
            OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")
            if state is not None:
                trainer.branch_from(state)
            del state
            print(f"run directory: {run_dir}", flush=True)
        threading.excepthook = _writer_thread_errors
        try:
            result = trainer.run()
        except (NonFiniteError, checkpoint.CheckpointWriteError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        except OSError as error:  # TensorBoard's writer, a video file: storage failed outside a checkpoint
            good = checkpoint.list_checkpoints(run_dir / "checkpoints")
            then = f"then resume={run_dir}" if good else "then start the run again"
            print(f"error: writing to {run_dir} failed: {error.strerror or error}; last good checkpoint: "
                  f"{good[-1].name if good else 'none'} (fix the storage, {then})", file=sys.stderr)
            sys.exit(1)
        if trainer.stopped_early:
            # Stopped by a signal, checkpoint written: exit as a process killed by it reports (128 + N), not as
            # a finished run. Under hydra/launcher=slurm a normal return would make submitit record the job as
            # done while SLURM requeues it, and the sweep would end before the requeued attempt ran.
            sys.exit(128 + trainer.signals.received)
        return result


if __name__ == "__main__":
    main()
