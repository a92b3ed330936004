"""Start-up validation: every mistake in a config is one line naming the key, before any work."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import fire.options
import fire.registry
from agents import AGENTS, agent_class
from agents.precision import PRECISIONS, native_bf16
from envs.make import SUITES, VECTORIZATIONS
from replay import KINDS

# reinit.* keys the loop reads (when to intervene); the others are the intervention's options.
REINIT_SCHEDULE_KEYS = ("name", "every_env_steps", "at_env_steps", "on_load")
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def compose(*overrides: str) -> dict[str, Any]:
    """The resolved config of `python train.py <overrides>` as a plain dict (for tests, benchmarks,
    notebooks); train.py itself gets the same from @hydra.main."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class ConfigError(ValueError):
    """A bad configuration value; the message is one line naming the key and what is allowed."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _positive_int(cfg: Mapping[str, Any], path: str, *, allow_zero: bool = False, allow_none: bool = False) -> None:
    value = _get(cfg, path)
    if value is None and allow_none:
        return
    low = 0 if allow_zero else 1
    _require(isinstance(value, int) and not isinstance(value, bool) and value >= low,
             f"{path}={value!r} must be an integer >= {low}")


def _get(cfg: Mapping[str, Any], path: str) -> Any:
    node: Any = cfg
    for part in path.split("."):
        node = node[part]
    return node


def _choice(cfg: Mapping[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    value = _get(cfg, path)
    _require(value in allowed, f"{path}={value!r} is unknown; allowed: {', '.join(allowed)}")


def validate(cfg: Mapping[str, Any]) -> None:
    """Raise ConfigError on the first problem found; checks cost nothing and build nothing."""
    _choice(cfg, "agent.name", tuple(AGENTS))
    validate_agent(cfg)
    _choice(cfg, "env.suite", SUITES)
    _choice(cfg, "env.vectorization", VECTORIZATIONS)
    _choice(cfg, "replay.kind", KINDS)
    _require(isinstance(cfg["device"], str) and bool(DEVICE.match(cfg["device"])),
             f"device={cfg['device']!r} is unknown; allowed: auto, cpu, cuda, cuda:N, mps")
    _choice(cfg, "precision", PRECISIONS)
    device = resolve_device(cfg["device"])
    _require(cfg["precision"] != "bf16" or native_bf16(device),
             f"precision=bf16 needs native bf16 matmuls (AVX512-BF16/AMX/ARM BF16 CPUs, CUDA 8.0+) and device={device} "
             "has none: emulated bf16 runs slower than fp32; allowed here: fp32")
    for path in ("seed",):
        _positive_int(cfg, path, allow_zero=True)
    for path in ("total_env_steps", "env.num_envs", "env.eval_num_envs", "env.action_repeat", "replay.capacity",
                 "replay.n_step", "eval.every_env_steps", "log.every_env_steps",
                 "checkpoint.every_env_steps", "checkpoint.keep", "replay.batch_size"):
        _positive_int(cfg, path)
    _positive_int(cfg, "learning_starts", allow_zero=True)
    if cfg.get("threads") is not None:
        _positive_int(cfg, "threads")
    _positive_int(cfg, "diagnostics.every_updates", allow_zero=True)
    _positive_int(cfg, "env.max_episode_steps", allow_none=True)
    _positive_int(cfg, "eval.episodes", allow_none=True)
    _positive_int(cfg, "eval.max_env_steps", allow_none=True)
    _require(cfg["eval"]["episodes"] is not None or cfg["eval"]["max_env_steps"] is not None,
             "eval.episodes=null needs eval.max_env_steps (an evaluation must end)")
    if cfg["eval"].get("video"):
        _positive_int(cfg, "eval.video_max_steps")
        _require(importlib.util.find_spec("imageio_ffmpeg") is not None,
                 "eval.video=true needs imageio-ffmpeg: pip install -e '.[video]'")
    if cfg["env"]["suite"] == "atari":
        from envs.atari import BACKENDS, GAMES
        from envs.atari.vector import FRAME_STACK_STARTS

        _require(cfg["env"].get("game") in GAMES,
                 f"env.game={cfg['env'].get('game')!r} is unknown; allowed: {', '.join(GAMES)}")
        backend = (cfg["env"].get("kwargs") or {}).get("backend", "vector")
        _require(backend in BACKENDS, f"env.kwargs.backend={backend!r} is unknown; allowed: {', '.join(BACKENDS)}")
        start = (cfg["env"].get("kwargs") or {}).get("frame_stack_start", "zeros")
        _require(start in FRAME_STACK_STARTS,
                 f"env.kwargs.frame_stack_start={start!r} is unknown; allowed: {', '.join(FRAME_STACK_STARTS)}")
    if cfg["env"]["suite"] == "minatar":
        _validate_minatar(cfg)

    ratio = cfg["replay_ratio"]
    _require(isinstance(ratio, int | float) and not isinstance(ratio, bool) and ratio > 0,
             f"replay_ratio={ratio!r} must be a number > 0 (gradient updates per env step)")
    total, starts = cfg["total_env_steps"], cfg["learning_starts"]
    _require(starts < total, f"learning_starts={starts} must be below total_env_steps={total}")
    gamma = cfg["replay"]["gamma"]
    _require(isinstance(gamma, int | float) and not isinstance(gamma, bool) and 0 <= gamma <= 1,
             f"replay.gamma={gamma!r} must be a number in [0, 1] (the discount)")
    batch, repeat = cfg["replay"]["batch_size"], cfg["env"]["action_repeat"]
    _require(cfg["replay"]["capacity"] >= batch,
             f"replay.capacity={cfg['replay']['capacity']} must be >= replay.batch_size={batch}")
    _require(starts >= batch * repeat,
             f"learning_starts={starts} must be >= replay.batch_size * env.action_repeat = {batch * repeat} "
             "so the first update has a full batch")
    validate_reinit(cfg)
    _require(not (cfg.get("resume") and cfg.get("load_checkpoint")),
             "resume and load_checkpoint exclude each other: resume continues a run, "
             "load_checkpoint branches a new one")


def _validate_minatar(cfg: Mapping[str, Any]) -> None:
    from envs.minatar import CONTINUAL_ID, GAMES

    env = cfg["env"]
    _require(env["action_repeat"] == 1,
             f"env.action_repeat={env['action_repeat']!r}; allowed for MinAtar: 1 (one env step is one frame)")
    sticky = (env.get("kwargs") or {}).get("sticky_action_prob", 0.1)
    _require(isinstance(sticky, int | float) and 0 <= sticky <= 1,
             f"env.kwargs.sticky_action_prob={sticky!r} must be a probability in [0, 1]")
    if env["id"] != CONTINUAL_ID:
        _require(env.get("game") in GAMES, f"env.game={env.get('game')!r} is unknown; allowed: {', '.join(GAMES)}")
        return
    games = list(env.get("games") or [])
    _require(bool(games) and all(g in GAMES for g in games),
             f"env.games={games!r} must be a non-empty list of MinAtar games; allowed: {', '.join(GAMES)}")
    _positive_int(cfg, "env.switch_env_steps")
    for key in ("num_envs", "eval_num_envs"):
        _require(env["switch_env_steps"] % env[key] == 0,
                 f"env.switch_env_steps={env['switch_env_steps']} must be a multiple of env.{key}={env[key]} "
                 "so that all envs switch game on the same env step")


def upgrade_saved_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """A run's saved config in today's keys, so runs started before a rename resume exactly: agent.gamma and
    agent.batch_size moved to replay.*, reinit.method is reinit.polar, reinit.linear is reinit.reset_linear."""
    agent, replay, reinit = dict(cfg["agent"]), dict(cfg["replay"]), dict(cfg["reinit"])
    for key in ("gamma", "batch_size"):
        if key in agent:
            replay[key] = agent.pop(key)
    if "method" in reinit:
        reinit["polar"] = reinit.pop("method")
    if "linear" in reinit:
        reinit["reset_linear"] = {None: None, "reset": True, "orthogonalize": False}[reinit.pop("linear")]
    return {**cfg, "agent": agent, "replay": replay, "reinit": reinit}


def key_docs() -> str:
    """Every agent.* and reinit.* key with its type, bounds and doc, from the typed configs (train.py --help)."""
    common = {f.name for f in dataclasses.fields(fire.registry.Options)}
    lines = ["== Agent keys (agent.*; replay.gamma and replay.batch_size are set by the agent preset) =="]
    for name in AGENTS:
        lines += [f"agent={name}:", *fire.options.describe(agent_class(name).CONFIG, "agent")]
    lines += ["== Intervention options (reinit.*) ==", "every intervention:",
              *fire.options.describe(fire.registry.Options, "reinit")]
    for name, entry in fire.registry.INTERVENTIONS.items():
        own = [line for line in fire.options.describe(entry.options, "reinit")
               if line.split(":")[0].strip().removeprefix("reinit.") not in common]
        lines += [f"reinit={name}: {entry.doc}", *own]
    return "\n".join(lines)


def validate_agent(cfg: Mapping[str, Any]) -> None:
    """agent.*: the agent's typed config (agents.<name>.CONFIG) builds: no unknown, missing or bad key."""
    try:
        agent_class(cfg["agent"]["name"]).config_from(cfg["agent"])
    except ValueError as error:
        raise ConfigError(str(error)) from None


def validate_reinit(cfg: Mapping[str, Any]) -> None:
    """reinit.*: a registered intervention the agent supports, its options typed and in range, and a
    schedule that applies it (no more often than it allows)."""
    reinit, total, starts = cfg["reinit"], cfg["total_env_steps"], cfg["learning_starts"]
    name = reinit["name"]
    if name != "none":
        options = {k: v for k, v in reinit.items() if k not in REINIT_SCHEDULE_KEYS}
        try:
            agent_class(cfg["agent"]["name"]).reinit_options(name, options, cfg["agent"]["name"])
        except ValueError as error:
            raise ConfigError(str(error)) from None
    every = reinit.get("every_env_steps")
    if every is not None:
        _positive_int(cfg, "reinit.every_env_steps")
        _require(every > starts, f"reinit.every_env_steps={every} must exceed learning_starts={starts}")
    at = reinit.get("at_env_steps") or []
    for step in at:
        _require(isinstance(step, int) and starts < step <= total,
                 f"reinit.at_env_steps contains {step!r}; each must be an integer in (learning_starts={starts}, "
                 f"total_env_steps={total}]")
    on_load = bool(cfg.get("load_checkpoint")) and reinit.get("on_load", True)
    _require(name == "none" or every is not None or bool(at) or on_load,
             f"reinit={name} is never applied: set reinit.every_env_steps or reinit.at_env_steps "
             "(or load_checkpoint with reinit.on_load=true)")
    limit = fire.registry.INTERVENTIONS[name].max_events if name != "none" else None
    if limit is not None:
        events = len(set(at) | set(range(every, total + 1, every) if every else ())) + on_load
        _require(events <= limit,
                 f"reinit={name} applies at most {limit} time(s) per run and this schedule has {events} events "
                 "(counted from env step 0); allowed: one of reinit.at_env_steps=[N] or load_checkpoint with "
                 "reinit.on_load=true")
