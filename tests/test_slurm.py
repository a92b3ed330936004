"""Sweeps on a real SLURM scheduler (the one-node cluster of tools/slurm_local.sh, through hydra/launcher=slurm):
a job preempted by `scontrol requeue` and a job that reaches its time limit both requeue, resume from their
checkpoints and end with the TensorBoard scalars of an uninterrupted run."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_train_sac import is_timing, scalars

pytestmark = pytest.mark.slow  # 5-10 min on 2 cores: five SLURM jobs, one local reference run

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tools" / "slurm_local.sh"
INSTALL = "apt-get update && apt-get install -y slurm-wlm munge slurmdbd mariadb-server"
# SAC on Pendulum with a small MLP: checkpoints every 400 env steps, FIRE at 2000. A job must outlast the first
# 60 s of its 2-minute limit (below) on the fastest machine: 10k env steps take ~75 s there and ~2.5 min on
# a slower one (4k steps took 34 s there: the job ended before its time-out signal).
RUN = ["agent=sac", "env=pendulum", "total_env_steps=10000", "learning_starts=400", "replay.batch_size=32",
       "agent.net.hidden_dims=[16,16]", "replay.capacity=5000", "eval.every_env_steps=1000", "eval.episodes=1",
       "log.every_env_steps=200", "diagnostics.every_updates=500", "checkpoint.every_env_steps=400",
       "reinit.at_env_steps=[2000]", "threads=1", "device=cpu", "quiet=true"]
# One core and 1 GB per job on the local node; resume=auto with fixed run directories, as the sweep presets set.
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1",
         "hydra.launcher.gpus_per_node=null", "resume=auto"]
TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def cluster():
    missing = [name for name in ("sbatch", "slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd")
               if shutil.which(name) is None]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing); as root: {INSTALL}")
    if os.geteuid() != 0:
        pytest.skip("tools/slurm_local.sh starts the SLURM daemons as root")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='pip install -e ".[sweep]"')
    was_up = subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    started = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        pytest.skip(f"the local SLURM cluster did not start: {started.stderr.strip()[-500:]}")
    yield
    if not was_up:
        subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, timeout=300)


def train(*overrides: str, out: Path) -> subprocess.Popen:
    """train.py from the repository root, as a user submits a sweep (jobs inherit its directory and env);
    Hydra's multirun.yaml goes to `out`."""
    log = (out / "client.log").open("w")
    sweep_dir = [f"hydra.sweep.dir={out}"] if "-m" in overrides else []
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *overrides, *sweep_dir], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def job_logs(submitit: Path) -> dict[str, str]:
    """Job id (`<array>_<task>`) -> its stdout: submitit writes <job>_<rank>_log.out, appended on each attempt."""
    return {path.name.rsplit("_", 2)[0]: path.read_text() for path in submitit.glob("*/*_log.out")}


def job_of(run_dir: Path, submitit: Path) -> str | None:
    return next((job for job, text in job_logs(submitit).items() if f"run directory: {run_dir}\n" in text), None)


def squeue() -> dict[str, tuple[str, str]]:
    lines = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], capture_output=True, text=True).stdout.split("\n")
    return {job: (state, reason) for job, state, reason in (line.split() for line in lines if line)}


def allocations(job: str) -> tuple[list[str], str]:
    """The states of every attempt of a job (oldest first) once the last has ended, and sacct's table."""
    for _ in range(60):  # the job's result file can appear a few seconds before SLURM records the end
        states = subprocess.run(["sacct", "--duplicates", "-X", "-n", "-P", "-j", job, "-o", "State"],
                                capture_output=True, text=True).stdout.split()
        if states and states[-1] not in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED"):
            break
        time.sleep(1)
    table = subprocess.run(["sacct", "--duplicates", "-j", job, "-o", "JobID,State,ExitCode,Start,End,Elapsed"],
                           capture_output=True, text=True).stdout
    return states, table


def test_preempted_and_timed_out_jobs_resume_to_the_uninterrupted_scalars(cluster, tmp_path):
    sweep, limited, reference = tmp_path / "sweep", tmp_path / "limited", tmp_path / "reference"
    for out in (sweep, limited, reference):
        out.mkdir()
    # 2 interventions x 2 seeds, 10 minutes per attempt; the FIRE seed-0 job gets preempted below.
    clients = [train("-m", *RUN, *SLURM, "reinit=none,fire", "seed=0,1", "hydra.launcher.timeout_min=10",
                     f"run_dir={sweep}/${{reinit.name}}/seed${{seed}}",
                     f"hydra.launcher.submitit_folder={sweep}/submitit/%j", out=sweep),
               # The same FIRE seed-0 run with a 2-minute limit: SLURM sends submitit's USR2 60 s before it, or up to
               # 60 s earlier (seen: 60-90 s), so 30-60 s into each attempt.
               train("-m", *RUN, *SLURM, "reinit=fire", "seed=0", f"run_dir={limited}/run",
                     "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=60",
                     f"hydra.launcher.submitit_folder={limited}/submitit/%j", out=limited),
               train(*RUN, "reinit=fire", "seed=0", f"run_dir={reference}/run", out=reference)]
    preempted_run, preempted = sweep / "fire" / "seed0", None
    deadline = time.monotonic() + TIMEOUT_S
    while any(client.poll() is None for client in clients):
        assert time.monotonic() < deadline, "jobs did not finish in time: " + str(squeue())
        queue = squeue()
        for job, (state, reason) in queue.items():
            if state == "PENDING" and reason == "BeginTime":
                # SLURM holds a requeued job for 2 minutes; release it at once to keep the test short.
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
        if preempted is None and any((preempted_run / "checkpoints").glob("*.pt")):
            job = job_of(preempted_run, sweep / "submitit")
            if job and queue.get(job, ("",))[0] == "RUNNING":
                subprocess.run(["scontrol", "requeue", job], check=True)
                preempted = job
        time.sleep(2)
    for client, out in zip(clients, (sweep, limited, reference), strict=True):
        assert client.returncode == 0, (out / "client.log").read_text()[-3000:]

    # Every job's stdout and stderr land in its submitit folder; each attempt appends to them.
    logs = job_logs(sweep / "submitit")
    assert len(logs) == 4 and all((sweep / "submitit" / job / f"{job}_0_log.err").is_file() for job in logs)
    assert preempted is not None, "the FIRE seed-0 job never ran with a checkpoint"
    states, table = allocations(preempted)
    print(f"sacct of the preempted job {preempted}:\n{table}")
    assert states[0] == "REQUEUED" and states[-1] == "COMPLETED", table
    assert "SIGTERM at env step" in logs[preempted] and f"resuming {preempted_run} from step_" in logs[preempted]

    (limited_job, limited_log), = job_logs(limited / "submitit").items()
    states, table = allocations(limited_job)
    print(f"sacct of the time-limited job {limited_job}:\n{table}")
    assert "REQUEUED" in states and states[-1] == "COMPLETED", (
        "the time-limited job finished within one attempt; give RUN more total_env_steps\n" + table)
    assert "SIGUSR2 at env step" in limited_log and f"resuming {limited / 'run'} from step_" in limited_log

    expected = {tag: values for tag, values in scalars(reference / "run").items() if not is_timing(tag)}
    assert {"losses/critic", "eval/episodic_return", "reinit/event", "plasticity/critic/dfi"} <= expected.keys()
    for name, run_dir in (("preempted", preempted_run), ("time-limited", limited / "run")):
        logged = {tag: values for tag, values in scalars(run_dir).items() if not is_timing(tag)}
        assert logged.keys() == expected.keys(), name
        for tag, values in expected.items():
            assert logged[tag] == values, (name, tag)  # same steps (none repeated or skipped), same values
        print(f"{name}: {len(expected)} tags, {sum(map(len, expected.values()))} scalars identical to the "
              f"uninterrupted run; eval/episodic_return {logged['eval/episodic_return']}")
