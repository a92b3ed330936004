"""Start-up validation: every mistake in a config is one line naming the key, before any work."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

import fire.options
import fire.registry
from agents import AGENTS, agent_class
from agents.precision import PRECISIONS, native_bf16
from envs.make import SUITES, VECTORIZATIONS
from loop.schedule import UpdateBudget
from loop.threads import AUTO
from loop.trigger import SIGNALS
from replay import KINDS

# reinit.* keys the loop reads (when to intervene); the others are the intervention's options.
REINIT_SCHEDULE_KEYS = ("name", "every_env_steps", "at_env_steps", "on_load", "trigger", "threshold",
                        "min_gap_env_steps", "check_every_env_steps")
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# numpy's global generator (seeded by the loop) takes seeds below 2**32; ALE takes int32 seeds.
SEED_LIMIT = 2**32
ATARI_SEED_LIMIT = 2**31
# Config groups whose keys the composed config holds; `hydra` is Hydra's own.
GROUP_KEYS = ("agent", "env", "reinit")
# Sections of configs/config.yaml whose keys are all listed there.
SECTIONS = ("replay", "eval", "diagnostics", "log", "checkpoint")


def compose(*overrides: str) -> dict[str, Any]:
    """The resolved config of `python train.py <overrides>` as a plain dict (for tests, benchmarks,
    notebooks); train.py itself gets the same from @hydra.main."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    resolve_auto(cfg)
    return OmegaConf.to_container(cfg, resolve=True)


def resolve_auto(cfg: DictConfig) -> None:
    """Replace the schedule keys left at `auto` by values relative to total_env_steps, so short runs
    work without extra keys; a 1M-step run gets the figures these keys used to default to. Paper presets
    (configs/experiment/) set their own. Runs in place on the composed config so that interpolations
    (agent.learning_starts: ${learning_starts}) see the numbers; a bad total is left to validate()."""
    total = cfg.get("total_env_steps")
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        return
    batch, repeat = cfg.replay.get("batch_size"), cfg.env.get("action_repeat", 1)
    auto = {
        # 5,000 random env steps (the usual warm-up), at most 5 % of a short run, at least one batch
        "learning_starts": (min(5_000, total // 20), batch * repeat if isinstance(batch, int) and isinstance(
            repeat, int) else 0),
        "eval.every_env_steps": (min(20_000, total // 10), 1),
        "checkpoint.every_env_steps": (min(100_000, total // 10), 1),
        "log.every_env_steps": (min(1_000, total // 100), 1),
    }
    for path, (value, floor) in auto.items():
        if OmegaConf.select(cfg, path) == "auto":
            OmegaConf.update(cfg, path, max(value, floor))


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


def known_keys() -> dict[str, set[str]]:
    """Top-level keys of configs/config.yaml (plus the groups), and the keys of its sections."""
    base = OmegaConf.load(CONFIG_DIR / "config.yaml")
    keys = {"": {k for k in base if k not in ("defaults", "hydra")} | set(GROUP_KEYS)}
    keys.update({section: set(base[section]) for section in SECTIONS})
    for preset in (CONFIG_DIR / "agent").glob("*.yaml"):  # agent presets set replay.gamma and replay.batch_size
        keys["replay"] |= set(OmegaConf.load(preset).get("replay") or {})
    return keys


def _check_keys(cfg: Mapping[str, Any]) -> None:
    for section, allowed in known_keys().items():
        node = cfg.get(section, {}) if section else cfg
        _require(isinstance(node, Mapping),
                 f"{section}={node!r} must be a mapping of keys: {', '.join(sorted(allowed))}")
        unknown = sorted(set(node) - allowed)
        prefix = f"{section}." if section else ""
        _require(not unknown, f"{prefix}{unknown[0] if unknown else ''} is not a config key; allowed"
                              f"{' in ' + section if section else ''}: {', '.join(sorted(allowed))}")


def _check_device(cfg: Mapping[str, Any]) -> None:
    name = cfg["device"]
    _require(isinstance(name, str) and bool(DEVICE.match(name)),
             f"device={name!r} is unknown; allowed: auto, cpu, cuda, cuda:N, mps")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.split(":")[1]) if ":" in name else 0
        _require(index < count, f"device={name} is not available here ({count} CUDA devices visible); "
                                f"allowed: auto, cpu{', cuda:0..' + str(count - 1) if count else ''}")
    if name == "mps":
        _require(torch.backends.mps.is_available(), "device=mps is not available here; allowed: auto, cpu")


def validate(cfg: Mapping[str, Any]) -> None:
    """Raise ConfigError on the first problem found; checks cost nothing and build nothing."""
    _check_keys(cfg)
    _choice(cfg, "agent.name", tuple(AGENTS))
    validate_agent(cfg)
    _choice(cfg, "env.suite", SUITES)
    _choice(cfg, "env.vectorization", VECTORIZATIONS)
    _choice(cfg, "replay.kind", KINDS)
    _check_device(cfg)
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
    threads = cfg.get("threads")
    _require(threads == AUTO or isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1,
             f"threads={threads!r} must be {AUTO} or an integer >= 1")
    _positive_int(cfg, "diagnostics.every_updates", allow_zero=True)
    _positive_int(cfg, "env.max_episode_steps", allow_none=True)
    if cfg["env"].get("eval_max_episode_steps") is not None:  # configs saved before the key existed lack it
        _positive_int(cfg, "env.eval_max_episode_steps")
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

    limit = ATARI_SEED_LIMIT if cfg["env"]["suite"] == "atari" else SEED_LIMIT
    envs = max(cfg["env"]["num_envs"], cfg["env"]["eval_num_envs"])
    _require(cfg["seed"] + envs <= limit, f"seed={cfg['seed']} is out of range: env seeds seed..seed+{envs - 1} must "
                                          f"stay below 2**{limit.bit_length() - 1}; allowed: 0..{limit - envs}")

    ratio = cfg["replay_ratio"]
    _require(isinstance(ratio, int | float) and not isinstance(ratio, bool) and 0 < ratio < float("inf"),
             f"replay_ratio={ratio!r} must be a number > 0 (gradient updates per env step)")
    total, starts = cfg["total_env_steps"], cfg["learning_starts"]
    _require(starts < total, f"learning_starts={starts} must be below total_env_steps={total}")
    updates = UpdateBudget(ratio, starts).earn(0, total)
    _require(updates >= 1, f"replay_ratio={ratio} gives {updates} updates over the run ({total - starts} env steps "
                           f"after learning_starts; ratios are read to 1/1000): raise replay_ratio or total_env_steps")
    gamma = cfg["replay"]["gamma"]
    _require(isinstance(gamma, int | float) and not isinstance(gamma, bool) and 0 <= gamma <= 1,
             f"replay.gamma={gamma!r} must be a number in [0, 1] (the discount)")
    batch, repeat = cfg["replay"]["batch_size"], cfg["env"]["action_repeat"]
    _require(cfg["replay"]["capacity"] >= batch,
             f"replay.capacity={cfg['replay']['capacity']} must be >= replay.batch_size={batch}")
    _require(starts >= batch * repeat,
             f"learning_starts={starts} must be >= replay.batch_size * env.action_repeat = {batch * repeat} "
             "so the first update has a full batch")
    _validate_priming(cfg)
    validate_reinit(cfg)
    # resume=auto with load_checkpoint: continue run_dir if it holds checkpoints, else branch it from the file
    # (a two-stage sweep's branches, requeued or re-launched).
    _require(not (cfg.get("resume") not in (None, "auto") and cfg.get("load_checkpoint")),
             "resume and load_checkpoint exclude each other: resume continues a run, "
             "load_checkpoint branches a new one (resume=auto does both: continues run_dir, else branches it)")


def _validate_priming(cfg: Mapping[str, Any]) -> None:
    _positive_int(cfg, "priming_updates", allow_zero=True)
    if not cfg["priming_updates"]:
        return
    starts, env = cfg["learning_starts"], cfg["env"]
    per_vector_step = env["num_envs"] * env["action_repeat"]
    # Priming happens at the end of the vector step reaching learning_starts; on a boundary, the replay then
    # holds the warm-up's transitions and nothing else.
    _require(starts % per_vector_step == 0,
             f"learning_starts={starts} must be a multiple of env.num_envs * env.action_repeat = {per_vector_step} "
             "with priming_updates > 0 (priming samples only the warm-up's transitions)")
    _require(cfg["replay"]["capacity"] * env["action_repeat"] >= starts,
             f"replay.capacity={cfg['replay']['capacity']} must hold the learning_starts={starts} env steps' "
             "transitions that priming_updates samples")


def _validate_trigger(cfg: Mapping[str, Any]) -> None:
    reinit = cfg["reinit"]
    signal = reinit.get("trigger")
    if signal is None:
        return
    _require(signal in SIGNALS, f"reinit.trigger={signal!r} is unknown; allowed: null, {', '.join(SIGNALS)}")
    _require(reinit["name"] != "none", f"reinit.trigger={signal} needs an intervention: reinit=<method>, not none")
    threshold, spec = reinit.get("threshold"), SIGNALS[signal]
    low, high = spec.range
    _require(threshold is not None or spec.default_threshold is not None,
             f"reinit.threshold=null: reinit.trigger={signal} has no default threshold (its scale depends on the "
             "network); give one")
    _require(threshold is None or (isinstance(threshold, int | float) and not isinstance(threshold, bool)
                                   and low <= threshold <= high),
             f"reinit.threshold={threshold!r} must be null (the signal's default) or a number in [{low:g}, {high:g}] "
             f"for reinit.trigger={signal}")
    _positive_int(cfg, "reinit.min_gap_env_steps", allow_zero=True)
    _positive_int(cfg, "reinit.check_every_env_steps")


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
    agent.batch_size moved to replay.*, reinit.method is reinit.polar, reinit.linear is reinit.reset_linear;
    runs from before env.eval_max_episode_steps keep evaluating without that cap; threads=null (torch's
    count, before `auto`) is the count torch gives this process."""
    agent, replay, reinit = dict(cfg["agent"]), dict(cfg["replay"]), dict(cfg["reinit"])
    for key in ("gamma", "batch_size"):
        if key in agent:
            replay[key] = agent.pop(key)
    if "method" in reinit:
        reinit["polar"] = reinit.pop("method")
    if "linear" in reinit:
        reinit["reset_linear"] = {None: None, "reset": True, "orthogonalize": False}[reinit.pop("linear")]
    env = {"eval_max_episode_steps": None, **cfg["env"]}
    threads = torch.get_num_threads() if cfg.get("threads") is None else cfg["threads"]
    return {**cfg, "threads": threads, "env": env, "agent": agent, "replay": replay, "reinit": reinit}


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
    # With priming, an intervention at learning_starts comes right after the priming updates.
    first = starts if cfg["priming_updates"] else starts + 1
    for step in at:
        _require(isinstance(step, int) and first <= step <= total,
                 f"reinit.at_env_steps contains {step!r}; each must be an integer in [{first}, "
                 f"total_env_steps={total}] (after learning_starts, or at it with priming_updates > 0)")
    _validate_trigger(cfg)
    on_load = bool(cfg.get("load_checkpoint")) and reinit.get("on_load", True)
    _require(name == "none" or every is not None or bool(at) or on_load or reinit.get("trigger") is not None,
             f"reinit={name} is never applied: set reinit.every_env_steps, reinit.at_env_steps or reinit.trigger "
             "(or load_checkpoint with reinit.on_load=true)")
    limit = fire.registry.INTERVENTIONS[name].max_events if name != "none" else None
    if limit is not None:
        _require(reinit.get("trigger") is None,
                 f"reinit={name} applies at most {limit} time(s) per run and reinit.trigger={reinit.get('trigger')} "
                 "may fire more often; allowed with a trigger: an intervention without such a limit")
        events = len(set(at) | set(range(every, total + 1, every) if every else ())) + on_load
        _require(events <= limit,
                 f"reinit={name} applies at most {limit} time(s) per run and this schedule has {events} events "
                 "(counted from env step 0); allowed: one of reinit.at_env_steps=[N] or load_checkpoint with "
                 "reinit.on_load=true")


def check_compatibility(cfg: Mapping[str, Any], branch_from: Mapping[str, Any] | None = None) -> None:
    """The checks that need the env's spaces: agent vs spaces, replay kind and memory, and the networks of
    a checkpoint to branch from. Builds one env, the agent and an empty replay (lazily mapped pages) on
    the CPU, writes nothing, and throws them away."""
    from agents import make_agent
    from envs import make_vector
    from replay import make_replay

    env, agent_name = cfg["env"]["name"], cfg["agent"]["name"]
    try:
        envs = make_vector({**cfg["env"], "vectorization": "sync"}, num_envs=1)
    except Exception as exc:  # gymnasium raises several types for a bad id or kwargs
        raise ConfigError(f"env={env} cannot be made (env.id={cfg['env']['id']!r}, env.kwargs): {_one_line(exc)}") \
            from None
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    envs.close()
    frames = obs_space.dtype == "uint8" and len(obs_space.shape) == 3
    _require(cfg["replay"]["kind"] != "atari" or frames,
             f"replay.kind=atari needs stacked uint8 frames and env={env} observes {obs_space}; allowed here: auto, "
             "uniform")
    try:
        agent = make_agent(cfg["agent"], obs_space, action_space, torch.device("cpu"))
    except Exception as exc:  # agents reject options and spaces they cannot take with ValueError, or fail on them
        raise ConfigError(f"agent={agent_name} on env={env} (actions {action_space}, observations {obs_space}): "
                          f"{type(exc).__name__}: {_one_line(exc)}") from None
    try:
        make_replay(cfg["replay"], obs_space, action_space, num_envs=cfg["env"]["num_envs"],
                    gamma=float(cfg["replay"]["gamma"]), device=torch.device("cpu"), seed=0,
                    frame_stack_start=envs.metadata.get("frame_stack_start", "zeros"))
    except MemoryError as exc:
        raise ConfigError(f"replay.capacity={cfg['replay']['capacity']} does not fit in memory: {_one_line(exc)}") \
            from None
    except ValueError as exc:
        raise ConfigError(f"replay: {_one_line(exc)}") from None
    if branch_from is not None:
        # Another env is a warm start to a new task (the same spaces, e.g. padded MinAtar games); networks
        # that do not fit its spaces are refused by their shapes below.
        source = branch_from.get("config") or {}
        was = (source.get("agent", {}).get("name"), source.get("env", {}).get("id"))
        _require(was[0] == agent_name,
                 f"load_checkpoint={cfg['load_checkpoint']!r} holds agent={was[0]} (on env.id={was[1]}); this run is "
                 f"agent={agent_name}: branch with the same agent")
        try:
            agent.load_state_dict(branch_from["agent"])
        except Exception as exc:  # torch's shape mismatches are RuntimeErrors, missing keys KeyErrors
            raise ConfigError(f"load_checkpoint={cfg['load_checkpoint']!r} holds networks of another shape than "
                              f"agent={agent_name} on env.id={cfg['env']['id']} here (they were trained on "
                              f"env.id={was[1]}: {_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line, short (torch puts the useful part of some on the second line)."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines()) or type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."
