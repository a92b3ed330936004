#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, to try the hydra/launcher=slurm path without a real cluster.
#
#   apt-get update && apt-get install -y slurm-wlm munge slurmdbd mariadb-server   # once, as root
#   tools/slurm_local.sh start    # munge, MariaDB + slurmdbd (sacct), slurmctld, slurmd; waits for an idle node
#   tools/slurm_local.sh status   # sinfo, squeue
#   tools/slurm_local.sh stop     # stops the daemons this script started
#
# Runs as root without systemd (containers). `start` is idempotent: running daemons are kept, and the
# generated /etc/slurm/*.conf are rewritten only when they change (restarting a changed daemon). The node
# gets the machine's cores (nproc, or SLURM_LOCAL_CPUS) and memory (free); state and daemon logs live under
# SLURM_LOCAL_DIR (default /var/tmp/slurm-local). slurmdbd keeps job accounting, which `sacct` and
# submitit's job watcher read (requeue history: `sacct --duplicates -j <job>`).
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/var/tmp/slurm-local}
CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}
MEM_MB=$(free -m | awk '/^Mem:/ {print int($2 * 0.95)}')  # headroom: slurmd drains a node reporting less
HOST=$(hostname -s)
SLURM_CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf

die() { echo "slurm_local: $*" >&2; exit 1; }

alive() {  # alive PIDFILE: the process it names is running
  [[ -s $1 ]] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null  # a stopping daemon removes its pid file
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...: retry COMMAND once a second
  local seconds=$1 what=$2; shift 2
  for ((i = 0; i < seconds; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "$what did not come up within ${seconds}s (logs: $DIR/*.log, $DIR/mariadb/mariadb.log)"
}

write_if_changed() {  # write_if_changed FILE MODE < content; returns 0 when the file changed
  local new; new=$(cat)
  if [[ -f $1 && "$(cat "$1")" == "$new" ]]; then return 1; fi
  printf '%s\n' "$new" > "$1"
  chmod "$2" "$1"
}

stop_daemon() {  # stop_daemon NAME PIDFILE
  if alive "$2"; then
    kill "$(cat "$2")"
    for _ in $(seq 30); do alive "$2" || break; sleep 1; done
    echo "stopped $1"
  fi
  rm -f "$2"
}

start() {
  [[ $EUID -eq 0 ]] || die "run as root (slurmd and the daemons' files need it)"
  for binary in munged slurmctld slurmd slurmdbd mariadbd sinfo; do
    command -v "$binary" >/dev/null || die "$binary not found; install: apt-get update && apt-get install -y slurm-wlm munge slurmdbd mariadb-server"
  done
  mkdir -p "$DIR"/{ctld,d,mariadb} /etc/slurm /run/munge /run/mysqld
  chown munge:munge /run/munge
  chown mysql:mysql /run/mysqld "$DIR/mariadb"

  if ! alive /run/munge/munged.pid; then
    [[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; }
    runuser -u munge -- munged --pid-file /run/munge/munged.pid
    echo "started munged"
  fi

  if ! alive "$DIR/mariadb/mariadb.pid"; then
    runuser -u mysql -- mariadbd --pid-file="$DIR/mariadb/mariadb.pid" --log-error="$DIR/mariadb/mariadb.log" \
      --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB mariadb -e "SELECT 1"
    echo "started mariadbd"
  fi

  # slurmdbd connects as root over MariaDB's socket, which Debian's root account authenticates by uid.
  local dbd_changed=0
  write_if_changed "$DBD_CONF" 600 <<EOF && dbd_changed=1
# Written by tools/slurm_local.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
EOF
  # proctrack/linuxproc and task/none: no cgroup delegation needed. ReturnToService=2: the node comes back
  # after a restart. KillWait is the grace between SIGTERM and SIGKILL when a job is requeued or cancelled
  # (time enough for a checkpoint).
  local conf_changed=0
  write_if_changed "$SLURM_CONF" 644 <<EOF && conf_changed=1
# Written by tools/slurm_local.sh
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=60
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  if ((dbd_changed)); then stop_daemon slurmdbd "$DIR/slurmdbd.pid"; fi
  if ! alive "$DIR/slurmdbd.pid"; then
    slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    echo "started slurmdbd"
  fi
  sacctmgr -n -P list cluster format=cluster | grep -qx local || sacctmgr -i add cluster local >/dev/null

  if ((conf_changed)); then
    stop_daemon slurmd "$DIR/slurmd.pid"
    stop_daemon slurmctld "$DIR/slurmctld.pid"
  fi
  if ! alive "$DIR/slurmctld.pid"; then
    slurmctld
    wait_for 60 slurmctld scontrol ping
    echo "started slurmctld"
  fi
  if ! alive "$DIR/slurmd.pid"; then
    slurmd
    echo "started slurmd"
  fi
  wait_for 60 "node $HOST (idle)" bash -c "sinfo -h -N -n $HOST -o %T | grep -Eq '^(idle|mixed|allocated)'"
  sinfo -N
}

stop() {
  stop_daemon slurmd "$DIR/slurmd.pid"
  stop_daemon slurmctld "$DIR/slurmctld.pid"
  stop_daemon slurmdbd "$DIR/slurmdbd.pid"
  stop_daemon mariadbd "$DIR/mariadb/mariadb.pid"
  stop_daemon munged /run/munge/munged.pid
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) sinfo -N && squeue ;;
  *) die "usage: $0 start|stop|status" ;;
esac
