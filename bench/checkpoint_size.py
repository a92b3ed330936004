"""Checkpoint size and write/read time of a full Atari replay (1M transitions, 4 envs by default), or of
the env snapshots of H1 envs (`--env`).

The replay is filled with real frames: each env's stream is a recording of random play of one game
(`--games`, one per env), repeated until the replay is full. Repeats lie tens of MB apart, beyond zstd's
match window, so they compress no better than fresh play would. Random noise would not compress at all and
would say nothing about Atari. Measured through the loop's own path: `AtariReplay.state_dict()` (compression)
then `loop.checkpoint.save` (atomic write, fsync), and `checkpoint.load` + `load_state_dict` back. The
reference is the same replay saved uncompressed (`torch.save` of the raw arrays), in the same run.

    python bench/checkpoint_size.py                     # 1M transitions: needs ~8 GB free RAM, ~8 GB disk
    python bench/checkpoint_size.py --capacity 200000   # smaller, same per-transition figures

`--env h1-walk-v0 --num-envs 16`: the envs' part of a checkpoint (`get_attr("state_blob")`, MuJoCo's
integration state per env) written through `loop.checkpoint.save` after 200 random steps; the reference
is the previous snapshot, which pickled each env's whole MjData, built and written in the same run.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs import make_vector  # noqa: E402
from envs.atari import make_atari_vector  # noqa: E402
from loop import checkpoint  # noqa: E402
from replay.atari import AtariReplay  # noqa: E402


def record(game: str, steps: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """Random play of one game: per step (obs, action, reward, next_obs, terminated, truncated) for one env."""
    env = make_atari_vector(game, 1, seed, episodic_life=True, fire_reset=True)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    steps_out = []
    for _ in range(steps):
        action = rng.integers(0, env.single_action_space.n, 1)
        new_obs, reward, terminated, truncated, info = env.step(action)
        next_obs = np.where(info["_final_obs"][:, None, None, None], info["final_obs"], new_obs)
        steps_out.append((obs[0], action[0], reward[0], next_obs[0], terminated[0], truncated[0]))
        obs = new_obs
    env.close()
    return steps_out


def fill(replay: AtariReplay, recordings: list[list[tuple[np.ndarray, ...]]]) -> None:
    per_env = replay.transitions_per_env
    for t in range(per_env):
        steps = [recording[t % len(recording)] for recording in recordings]
        replay.add(*(np.stack(column) for column in zip(*steps, strict=True)))


def timed(fn, *args):
    tick = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - tick


def whole_mjdata_snapshot(blob: bytes, env) -> bytes:
    """The previous snapshot format: the same blob with the env's whole MjData pickled in place of its state."""
    saved = pickle.loads(blob)
    saved["mujoco"] = {"data": env.unwrapped.data}
    return pickle.dumps(saved)


def env_snapshots(env_id: str, num_envs: int, directory: Path) -> None:
    envs = make_vector({"id": env_id}, num_envs=num_envs)
    envs.reset(seed=0)
    for _ in range(200):
        envs.step(envs.action_space.sample())
    blobs, snapshot_seconds = timed(envs.get_attr, "state_blob")
    path, save_seconds = timed(checkpoint.save, {"agent": {}, "envs": blobs}, directory, 1, 1)
    size = path.stat().st_size
    restored, load_seconds = timed(checkpoint.load, path)
    _, restore_seconds = timed(envs.set_attr, "state_blob", list(restored["envs"]))
    print(f"{env_id} x {num_envs}: integration state {size / num_envs / 1e3:8.1f} KB per env, "
          f"{size / 2**20:7.2f} MiB in all; write {snapshot_seconds + save_seconds:6.3f} s "
          f"(snapshot {snapshot_seconds:.3f} + save {save_seconds:.3f}), read {load_seconds + restore_seconds:6.3f} s")
    old, old_snapshot = timed(lambda: [whole_mjdata_snapshot(b, e) for b, e in zip(blobs, envs.envs, strict=True)])
    old_path, old_save = timed(checkpoint.save, {"agent": {}, "envs": old}, directory, 2, 1)
    old_size = old_path.stat().st_size
    _, old_load = timed(checkpoint.load, old_path)
    print(f"{env_id} x {num_envs}: whole MjData      {old_size / num_envs / 1e3:8.1f} KB per env, "
          f"{old_size / 2**20:7.2f} MiB in all; write {old_snapshot + old_save:6.3f} s "
          f"(snapshot {old_snapshot:.3f} + save {old_save:.3f}), read {old_load:6.3f} s (load only)")
    print(f"ratios integration state / whole MjData: size {size / old_size:.5f}, "
          f"write {(snapshot_seconds + save_seconds) / (old_snapshot + old_save):.3f}")
    envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="measure the env snapshots of this gymnasium id instead")
    parser.add_argument("--num-envs", type=int, default=16, help="with --env")
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--games", default="pong,breakout,ms_pacman,space_invaders", help="one per env")
    parser.add_argument("--record-steps", type=int, default=3000, help="recorded agent steps per game")
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    parser.add_argument("--no-reference", action="store_true", help="skip the uncompressed reference write")
    args = parser.parse_args()
    if args.env is not None:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            env_snapshots(args.env, args.num_envs, Path(tmp))
        return

    games = args.games.split(",")
    print(f"capacity {args.capacity:,} transitions over {len(games)} envs ({', '.join(games)}); "
          f"zstd threads: {os.cpu_count()} cores; torch {torch.__version__}")
    recordings = [record(game, args.record_steps, seed) for seed, game in enumerate(games)]
    replay = AtariReplay(args.capacity, len(games))
    _, seconds = timed(fill, replay, recordings)
    print(f"filled in {seconds:.1f} s: {replay.nbytes / 2**30:.2f} GiB in RAM, "
          f"{replay.nbytes / args.capacity:,.0f} B per transition")

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        state, pack_seconds = timed(replay.state_dict)
        path, save_seconds = timed(checkpoint.save, {"replay": state}, directory, 1, 1)
        size = path.stat().st_size
        del state
        loaded, load_seconds = timed(checkpoint.load, path)
        _, unpack_seconds = timed(replay.load_state_dict, loaded["replay"])
        del loaded
        path.unlink()
        write, read = pack_seconds + save_seconds, load_seconds + unpack_seconds
        print(f"compressed:   {size / 2**20:8.1f} MiB ({size / args.capacity:,.0f} B per transition)  "
              f"write {write:5.1f} s (compress {pack_seconds:.1f} + save {save_seconds:.1f})  "
              f"read {read:5.1f} s (load {load_seconds:.1f} + decompress {unpack_seconds:.1f})")

        if args.no_reference:
            return
        raw_state = {name: getattr(replay, name) for name in AtariReplay._ARRAYS}  # by reference, no copy
        raw_path, raw_write = timed(checkpoint.save, {"replay": raw_state}, directory, 2, 1)
        raw_size = raw_path.stat().st_size
        raw_loaded, raw_read = timed(checkpoint.load, raw_path)
        del raw_loaded
        print(f"uncompressed: {raw_size / 2**20:8.1f} MiB ({raw_size / args.capacity:,.0f} B per transition)  "
              f"write {raw_write:5.1f} s  read {raw_read:5.1f} s")
        print(f"ratios compressed/uncompressed: size {size / raw_size:.3f}, write {write / raw_write:.2f}, "
              f"read {read / raw_read:.2f}")


if __name__ == "__main__":
    main()
