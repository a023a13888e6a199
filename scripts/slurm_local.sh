#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying the SLURM profile and for the tests.
# Debian/Ubuntu, as root. Installs Debian's slurm-wlm and munge when missing.
#
#   bash scripts/slurm_local.sh up      # munged + slurmctld + slurmd, node "localhost", partition "local"
#   bash scripts/slurm_local.sh status  # sinfo
#   bash scripts/slurm_local.sh down    # stop all three, remove the state folder
#
# Everything lives in $STUCRS_SLURM_DIR (default /tmp/stucrs-slurm): slurm.conf, state, spool, logs,
# pid files, the munge socket. `up` prints the line to export (SLURM_CONF=...), which the commands
# (sbatch, squeue, snakemake's SLURM executor) need to find this cluster.
set -euo pipefail
dir="${STUCRS_SLURM_DIR:-/tmp/stucrs-slurm}"
conf="$dir/slurm.conf"

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are missing; install them as root (apt-get install slurm-wlm munge)"
  command -v apt-get >/dev/null || die "no apt-get: install SLURM (slurmctld, slurmd) and munge by hand"
  echo "[slurm_local] installing Debian packages: slurm-wlm munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

wait_for() {  # wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

up() {
  [ "$(id -u)" = 0 ] || die "run as root (slurmd and munged need it)"
  install_packages
  down_quiet
  mkdir -p "$dir"/{state,spool,log,run}
  chmod 755 "$dir"  # munged (the munge user) keeps its socket in $dir/run
  # munge: its own key and socket in the folder, running as the munge user
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge "$dir/run"
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  su -s /bin/sh munge -c "munged --socket=$dir/run/munge.socket --pid-file=$dir/run/munged.pid --force" \
    || die "munged did not start (see /var/log/munge/munged.log)"
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  cat > "$conf" <<EOF
ClusterName=stucrs-local
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/run/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MailProg=/bin/true
# finished jobs stay visible to squeue for 5 minutes (the profile asks squeue for job states)
MinJobAge=300
ReturnToService=2
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  # job steps (srun inside a batch job) read the default path, not SLURM_CONF: point it here when
  # the machine has no SLURM configuration of its own (and only then; `down` removes the link)
  mkdir -p /etc/slurm
  if [ ! -e /etc/slurm/slurm.conf ] || [ "$(readlink /etc/slurm/slurm.conf)" = "$conf" ]; then
    ln -sfn "$conf" /etc/slurm/slurm.conf
  elif [ "$(readlink -f /etc/slurm/slurm.conf)" != "$conf" ]; then
    echo "[slurm_local] warning: /etc/slurm/slurm.conf belongs to another cluster; job steps may read it" >&2
  fi
  export SLURM_CONF="$conf"
  slurmctld -f "$conf" || die "slurmctld did not start (see $dir/log/slurmctld.log)"
  slurmd -f "$conf" -N localhost || die "slurmd did not start (see $dir/log/slurmd.log)"
  wait_for 30 sh -c "sinfo -h -o %T | grep -qx idle" \
    || die "the node did not become idle (see $dir/log/slurmctld.log and slurmd.log)"
  echo "[slurm_local] up: node localhost ($cpus CPUs, $mem MB), partition local"
  echo "export SLURM_CONF=$conf"
}

kill_pidfile() {
  local f=$1
  [ -s "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  wait_for 10 sh -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
}

down_quiet() {
  if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$conf" ]; then rm -f /etc/slurm/slurm.conf; fi
  [ -d "$dir" ] || return 0
  kill_pidfile "$dir/run/slurmd.pid"
  kill_pidfile "$dir/run/slurmctld.pid"
  kill_pidfile "$dir/run/munged.pid"
  rm -rf "$dir"
}

case "${1:-}" in
  up) up ;;
  down) down_quiet; echo "[slurm_local] down" ;;
  status) SLURM_CONF="$conf" sinfo ;;
  *) sed -n '2,11p' "$0"; exit 2 ;;
esac
