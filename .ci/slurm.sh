#!/usr/bin/env bash
# A real one-node Slurm on this machine (Debian's slurm-wlm and munge, as root, no systemd),
# for the tests marked `slurm`. Everything listens on 127.0.0.1.
#   .ci/slurm.sh install   Debian packages (about a minute)
#   .ci/slurm.sh start     munged, slurmctld, slurmd; waits until the node is idle
#   .ci/slurm.sh stop      by pid file
set -euo pipefail

case "${1:-}" in
install)
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
    ;;
start)
    [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    install -d -o munge -g munge -m 755 /run/munge
    [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null || runuser -u munge -- /usr/sbin/munged
    host=$(hostname -s); cpus=$(nproc); mem=$(( $(free -m | awk '/^Mem:/{print $2}') - 1024 ))
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmUser=root
SlurmdUser=root
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=30
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
    running /run/slurmctld.pid || /usr/sbin/slurmctld -i
    running /run/slurmd.pid || /usr/sbin/slurmd
    for _ in $(seq 90); do scontrol show node "$host" 2>/dev/null | grep -q "State=IDLE" && break; sleep 1; done
    sinfo
    ;;
stop)
    for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
