"""H1 memory: peak RSS of a 6k-step h1-walk SAC run against a CleanRL-style SAC and SB3's SAC, and the RSS of
bare env processes, each measured in a fresh subprocess of this run.

Runs (peak RSS = the child's ru_maxrss from wait4, which includes every page it ever touched):
  ours      `python train.py agent=sac env=h1-walk total_env_steps=6000 threads=1` (5k random steps, 1k
            updates, then the final evaluation: 10 episodes in a second env, and the checkpoint)
  CleanRL   bench/reference/cleanrl_sac.py with the same learning_starts (no evaluation, no checkpoint)
  SB3       stable_baselines3.SAC("MlpPolicy") with the same learning_starts (SB3 defaults otherwise)
All three build their env with gym.make("h1-walk-v0"), so they share whatever the env costs.
Bare env processes: one h1-walk env after reset, a second one beside it (an evaluation env), the model
as compiled before the shared physics model (all visual meshes, MuJoCo's asset cache on, no heap
trim), and gymnasium's Humanoid-v5 for scale.
Import share: what train.py imports beyond the CleanRL-style script's imports (torch, gymnasium, the H1
envs, TensorBoard's writer), as the RSS each adds in one process, in train.py's order.

    python -m bench.h1_memory                  # the figures in bench/README.md (~10 minutes on 2 busy cores)
    python -m bench.h1_memory --skip-runs      # bare env processes and the import share only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from bench.common import machine, table

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20

RSS = ("def rss():\n"
       "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) * 1024\n")
BARE_ENVS = {
    "h1-walk env (ours)": """
        import gymnasium as gym, envs
        env = gym.make("h1-walk-v0"); env.reset(seed=0)
        one = rss()
        second = gym.make("h1-walk-v0"); second.reset(seed=0)
        print(one, rss() - one)
    """,
    "h1-walk model as compiled before (full model, asset cache, no trim)": """
        import mujoco, envs
        from envs.h1.robot import build_robot
        from envs.h1.task import TASKS
        def build():
            spec = build_robot(); TASKS["walk"]().add_scene(spec)
            model = spec.compile(); return model, mujoco.MjData(model)
        first = build(); one = rss()
        second = build(); print(one, rss() - one)
    """,
    "gymnasium Humanoid-v5": """
        import gymnasium as gym
        env = gym.make("Humanoid-v5"); env.reset(seed=0)
        one = rss()
        second = gym.make("Humanoid-v5"); second.reset(seed=0)
        print(one, rss() - one)
    """,
}
# Config system first (train.py imports Hydra before its own modules), then ours; each module's row is what
# it adds beyond the rows above it.
TRAIN_IMPORTS = ("yaml", "antlr4", "omegaconf", "hydra", "replay", "agents", "fire", "loop.runner", "train")
IMPORT_SHARE = """
import importlib, sys, torch, gymnasium, envs
from torch.utils.tensorboard import SummaryWriter
base = rss()
for name in sys.argv[1:]:
    importlib.import_module(name)
    print(name, rss() - base)
"""
SB3 = """
import sys, torch, gymnasium as gym, envs
from stable_baselines3 import SAC
torch.set_num_threads(1)
steps, learning_starts = int(sys.argv[1]), int(sys.argv[2])
model = SAC("MlpPolicy", gym.make("h1-walk-v0"), learning_starts=learning_starts, seed=1, device="cpu")
model.learn(total_timesteps=steps)
"""


def peak_rss(command: list[str], cwd: Path) -> tuple[int, str]:
    """(peak RSS bytes, combined output) of a child process; raises if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{output[-3000:]}")
    return usage.ru_maxrss * 1024, output


def bare_envs() -> list[list[object]]:
    rows = []
    for name, body in BARE_ENVS.items():
        script = RSS + textwrap.dedent(body)
        _, output = peak_rss([sys.executable, "-c", script], ROOT)
        one, second = (int(v) for v in output.split()[-2:])
        rows.append([name, f"{one / MIB:.0f}", f"{second / MIB:.0f}"])
    return rows


def import_share() -> list[list[object]]:
    _, output = peak_rss([sys.executable, "-c", RSS + IMPORT_SHARE, *TRAIN_IMPORTS], ROOT)
    rows, previous = [], 0
    for line in output.splitlines()[-len(TRAIN_IMPORTS):]:
        name, total = line.split()
        rows.append([name, f"{(int(total) - previous) / MIB:.1f}", f"{int(total) / MIB:.1f}"])
        previous = int(total)
    return rows


def runs(total_env_steps: int, learning_starts: int) -> list[tuple[str, int, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        ours, _ = peak_rss([sys.executable, "train.py", "agent=sac", "env=h1-walk", "threads=1", "quiet=true",
                            "device=cpu", f"total_env_steps={total_env_steps}", f"learning_starts={learning_starts}",
                            f"run_dir={tmp}/ours"], ROOT)
        checkpoints = sorted(Path(tmp, "ours").rglob("*.pt"))
        checkpoint = f"checkpoint {checkpoints[-1].stat().st_size / MIB:.1f} MiB" if checkpoints else "no checkpoint"
        cleanrl, _ = peak_rss([sys.executable, "-m", "bench.reference.cleanrl_sac", "--total-timesteps",
                               str(total_env_steps), "--learning-starts", str(learning_starts)], ROOT)
        results = [("ours (train.py, with final evaluation and checkpoint)", ours, checkpoint),
                   ("CleanRL-style (bench/reference/cleanrl_sac.py)", cleanrl, "")]
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print("stable-baselines3 is not installed (pip install -e .[bench]): SB3 run skipped")
        else:
            sb3, _ = peak_rss([sys.executable, "-c", SB3, str(total_env_steps), str(learning_starts)], Path(tmp))
            results.append(("SB3 SAC (MlpPolicy)", sb3, ""))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-env-steps", type=int, default=6000)
    parser.add_argument("--learning-starts", type=int, default=5000)
    parser.add_argument("--skip-runs", action="store_true", help="bare env processes only")
    args = parser.parse_args()
    print(machine())
    print(table(["process", "RSS after reset MiB", "+ a second env MiB"], bare_envs()))
    print("\nWhat train.py imports beyond torch, gymnasium, the envs and TensorBoard's writer:")
    print(table(["module", "+ RSS MiB", "cumulative MiB"], import_share()))
    if args.skip_runs:
        return
    results = runs(args.total_env_steps, args.learning_starts)
    ours = results[0][1]
    print(f"\n{args.total_env_steps} env steps of SAC on h1-walk, {args.learning_starts} of them random, 1 thread:")
    print(table(["run", "peak RSS MiB", "ours / this", "note"],
                [[name, f"{peak / MIB:.0f}", f"{ours / peak:.2f}", note] for name, peak, note in results]))


if __name__ == "__main__":
    main()
