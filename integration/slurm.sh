#!/bin/bash
# A one-node Slurm cluster on loopback for den's Slurm tests (integration/slurm.rs), started as
# root by setup.sh. Debian's slurm-wlm and munge, without systemd: munged, slurmctld and slurmd
# run as daemons of their own. Idempotent and quick: if `sinfo` answers with the node up, nothing
# is done; otherwise the configuration is (re)written and the daemons are (re)started.
#
# The settings are the ones that work on a container host without systemd (ENVIRONMENT.md):
# proctrack/linuxproc (Slurm's default tracking, which signals a job's processes and then forgets
# them: the case den must handle itself), task/none, loopback-only ports, and oversubscription so
# that job arrays larger than the CPU count run at once.
set -euo pipefail

node=$(hostname -s)
conf=/etc/slurm/slurm.conf

up() {
    timeout 5 sinfo -h -n "$node" -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'
}

if [ -f "$conf" ] && up; then
    exit 0
fi

cpus=$(nproc)
want=$(cat <<EOF
# Written by den's integration/slurm.sh: a one-node cluster on loopback for the tests.
ClusterName=den
SlurmctldHost=$node(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
)
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" > "$conf"
    chmod 0644 "$conf"
fi

mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown slurm:slurm /var/spool/slurmctld /var/log/slurm
chown munge:munge /run/munge
chmod 0755 /run/munge

# A daemon that runs but does not answer (an old configuration) is restarted.
stop() {
    local pidfile=$1
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}

if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key -f; }
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged --force
fi

echo "setup: starting a one-node Slurm on loopback (slurmctld, slurmd)"
stop /run/slurmd.pid
stop /run/slurmctld.pid
/usr/sbin/slurmctld -i
/usr/sbin/slurmd
for _ in $(seq 100); do
    if up; then
        exit 0
    fi
    # A node that an earlier run left down or drained comes back.
    scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
    sleep 0.2
done
echo "setup: Slurm did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
exit 1
