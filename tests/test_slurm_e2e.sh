#!/usr/bin/env bash
# tests/test_slurm_e2e.sh — `qat sweep --emit-slurm` on a real Slurm.
#
# The test starts its own one-node cluster from Debian's packages (munged, slurmctld,
# slurmd) with everything private to a temporary directory: a munge key made for it, the
# munge socket, slurm.conf, free ports on 127.0.0.1, state, spool and logs. Nothing global is
# read or changed, and a cluster already running on the machine is not touched. Then:
#   1. a 4-run sweep of tiny models is emitted as a job array and submitted; all 4 array tasks
#      complete, every run.h5 says completed, and `qat fit` reads the runs. The script asks
#      for one CPU per task and the runs were given threads=1 from SLURM_CPUS_PER_TASK (the
#      cluster's task/none does not bind, so without the cap they would take every core);
#   2. one run's outputs are deleted and another is left interrupted (stopped after 8 steps,
#      checkpoint kept); the same array is submitted again: the deleted run is started, the
#      interrupted one resumed, and the two finished runs are skipped with their files untouched.
# The sweep lives in a directory whose name has a space and a '%' ("job dir%1"), so the
# script's #SBATCH --output line must be quoted and escaped as sbatch reads it: unquoted,
# sbatch refuses the script ("Invalid directive"), and an unescaped '%1' is no log of ours.
# On exit (pass or fail) every job is cancelled and every daemon it started is stopped, then
# checked gone with pgrep; on failure the daemons' and the tasks' logs are printed.
# Exit 77 (meson's "skipped") when not root or the Slurm packages are not installed
# (`make test` installs them: scripts/install-deps.sh). Needs QAT_BIN, the qat executable.
set -uo pipefail

qat=${QAT_BIN:?QAT_BIN must name the qat executable}
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "only root can start the private munged, slurmctld and slurmd"
for c in munged mungekey munge unmunge slurmctld slurmd sbatch squeue scontrol scancel sinfo pgrep; do
  command -v "$c" >/dev/null ||
    skip "$c not found; install munge slurmctld slurmd slurm-client procps (make test does)"
done

# Settings of an outer Slurm job or of the user's would steer sbatch and squeue elsewhere.
unset $(compgen -e | grep -E '^(SLURM|SBATCH|SQUEUE|SINFO|SCONTROL|SALLOC|SRUN)_') SLURM_CONF 2>/dev/null

T=$(mktemp -d /tmp/qat-slurm.XXXXXX) || exit 1
# munged insists that every directory above its socket is searchable by all, and that the
# key's directory is writable by its owner alone.
chmod 711 "$T"
J="$T/job dir%1" # the sweep's directory: a space and a '%' (see above)
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/log" "$J" && chmod 711 "$T/munge"
export SLURM_CONF=$T/slurm.conf # for sbatch, squeue, scontrol, scancel, sinfo
daemons=()                      # "name:pid" of each daemon started, in start order

fail() { echo "FAIL: $*"; exit 1; }
note() { echo "# $*"; }
alive() { kill -0 "$1" 2>/dev/null; }

print_logs() {
  for f in "$T"/log/* "$J"/out/.sweep/slurm-*.log "$J"/out/*/train.log; do
    [ -f "$f" ] || continue
    echo "---- ${f#"$T"/} (last 40 lines)"
    tail -n 40 "$f"
  done
}

# Poll until "$@" succeeds, at most $1 seconds (every 0.2 s).
wait_for() {
  local secs=$1 t
  shift
  for ((t = 0; t < secs * 5; t++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

our_steps() {
  local p
  for p in $(pgrep -x slurmstepd); do
    grep -qz "^SLURM_CONF=$T/slurm.conf\$" "/proc/$p/environ" 2>/dev/null && echo "$p"
  done
}
none_left() { ! pgrep -f -- "$T" >/dev/null && [ -z "$(our_steps)" ]; }

# Cancel the jobs, stop the daemons (TERM, then KILL after 15 s), check nothing is left.
cleanup() {
  local rc=$? name pid t left
  set +e
  if [ ${#daemons[@]} -gt 0 ]; then
    if squeue -h -o %i 2>/dev/null | grep -q .; then
      scancel --quiet --full --user=root 2>/dev/null
      for ((t = 0; t < 150; t++)); do squeue -h -o %i 2>/dev/null | grep -q . || break; sleep 0.1; done
    fi
    for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
      name=${daemons[i]%%:*} pid=${daemons[i]#*:}
      alive "$pid" && kill -TERM "$pid"
      for ((t = 0; t < 150; t++)); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then echo "$name (pid $pid) ignored SIGTERM; killing it"; kill -KILL "$pid"; fi
      wait "$pid" 2>/dev/null
    done
  fi
  # The daemons and the jobs' qat processes name $T on their command lines; job steps
  # (slurmstepd, detached from slurmd) carry the private SLURM_CONF in their environment.
  # Whatever is left is reported, which fails the test, and then killed.
  wait_for 10 none_left
  left=$(pgrep -a -f -- "$T"; for pid in $(our_steps); do echo "$pid slurmstepd (a job step)"; done)
  if [ -n "$left" ]; then
    echo "FAIL: processes of the test cluster are left; killing them:"
    echo "$left"
    for pid in $(cut -d ' ' -f 1 <<<"$left"); do kill -KILL "$pid" 2>/dev/null; done
    rc=1
  fi
  [ "$rc" -ne 0 ] && print_logs
  rm -rf "$T"
  [ "$rc" -eq 0 ] && echo "PASS: test_slurm_e2e (no slurmctld, slurmd or munged left)"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 1' INT TERM

# Two free TCP ports on 127.0.0.1 (a connection that fails means nobody listens).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for ((try = 0; try < 50; try++)); do
  port=$((20000 + RANDOM % 30000))
  port_free "$port" && port_free $((port + 1)) && break
done

# ---------------------------------------------------------------- the cluster
note "cluster in $T, ports $port and $((port + 1))"
mungekey --create --keyfile="$T/munge/munge.key" || fail "mungekey could not make a key"
munged --foreground --key-file="$T/munge/munge.key" --socket="$T/munge/socket" \
  --pid-file="$T/munge/munged.pid" --seed-file="$T/munge/seed" >"$T/log/munged.out" 2>&1 &
daemons+=("munged:$!")
munge_ok() { munge -n --socket="$T/munge/socket" | unmunge --socket="$T/munge/socket"; }
wait_for 15 munge_ok || fail "munged did not answer on $T/munge/socket within 15 s"

host=$(hostname -s)
node=$(slurmd -C | head -n 1) # this host's real CPUs, sockets and RealMemory
case $node in NodeName=*) ;; *) fail "slurmd -C printed no node line: $node" ;; esac
: >"$T/plugstack.conf" # no SPANK plugins, whatever /etc/slurm holds
cat >"$SLURM_CONF" <<EOF
# One-node cluster for tests/test_slurm_e2e.sh; everything under $T.
ClusterName=qattest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
PlugStackConfig=$T/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -f "$SLURM_CONF" >"$T/log/slurmctld.out" 2>&1 &
daemons+=("slurmctld:$!")
wait_for 30 scontrol ping || fail "slurmctld did not answer within 30 s"
slurmd -D -f "$SLURM_CONF" >"$T/log/slurmd.out" 2>&1 &
daemons+=("slurmd:$!")
node_idle() { [ "$(sinfo -h -n "$host" -o %T)" = idle ]; }
wait_for 30 node_idle || fail "node $host is not idle within 30 s: $(sinfo -h -n "$host" -o %T)"
note "cluster up: $(sinfo -h -o '%P %D %c %T')"

# Submit job.sh, wait for every array task to leave the queue (at most $1 s), and require
# Slurm to record each of the 4 tasks as COMPLETED with exit code 0.
submit_and_wait() {
  local secs=$1 id states
  id=$(sbatch --parsable job.sh) || fail "sbatch job.sh failed"
  note "job $id submitted"
  queue_empty() { ! squeue -h -j "$id" -o %i | grep -q .; }
  wait_for "$secs" queue_empty || fail "job $id still queued or running after $secs s: $(squeue -h -j "$id")"
  states=$(scontrol -o show job "$id" | grep -o 'JobState=[A-Z_]* .*ExitCode=[0-9:]*' |
    sed 's/JobState=\([A-Z_]*\) .*ExitCode=\([0-9:]*\)/\1 \2/' | sort | uniq -c | tr -s ' ')
  [ "$states" = " 4 COMPLETED 0:0" ] || fail "job $id: expected 4 tasks COMPLETED 0:0, Slurm says: $states"
  job_id=$id
}

# ---------------------------------------------------------------- one sweep
cd "$J" || fail "cd $J"
cat >tiny.yaml <<EOF
# four tiny runs, about a second each
base:
  model: {preset: "", layers: 1, dim: 16, heads: 2, vocab: 64, seq_len: 16}
  data: {source: synthetic, synth_topics: 2}
  train: {tokens: 2048, batch_tokens: 64, eval_every: 0, eval_tokens: 64,
          checkpoint_every: 4, log_every: 4, warmup: 0.1}
grid:
  model.dim: [16, 24]
  train.tokens: [2048, 4096]
out: out
EOF
"$qat" sweep tiny.yaml --emit-slurm job.sh || fail "qat sweep --emit-slurm exited $?"
grep -qxF "#SBATCH --output=\"$T/job dir%%1/out/.sweep/slurm-%A_%a.log\"" job.sh ||
  fail "job.sh: the log path is not quoted with its '%' doubled: $(grep output job.sh)"
grep -qx '#SBATCH --array=0-3' job.sh || fail "job.sh has no '#SBATCH --array=0-3'"
grep -qx '#SBATCH --cpus-per-task=1' job.sh || fail "job.sh does not ask for 1 CPU per task: $(grep cpus job.sh)"

submit_and_wait 90
plan=$("$qat" sweep tiny.yaml --dry-run) || fail "qat sweep --dry-run exited $?"
grep -q 'would start 0, resume 0, skip 4 completed' <<<"$plan" || fail "not every run.h5 says completed:"$'\n'"$plan"
# Each run was started with threads from the allocation (1 CPU), not the node's cores.
for r in out/dim*-tokens*; do
  grep -q -- '--set threads=1 ' "$r/train.log" || fail "$r did not run with threads=1: $(head -n 1 "$r/train.log")"
done
# 2 sizes × 2 budgets cannot identify all five Chinchilla constants: hold the exponents.
# What is tested here is that the fit reads the 4 runs the array wrote. Whether 4 runs of
# 2048-4096 tokens then determine A, B and E is the identifiability rules' business
# (docs/scaling-laws.md, rule 5): a refusal (exit 2) must still name the 4 runs.
fit_reads_4() {
  local fit rc
  fit=$("$qat" fit out --fix alpha=0.34 --fix beta=0.28 2>&1); rc=$?
  case $rc in
    0) grep -q 'chinchilla law, 4 runs' <<<"$fit" || fail "qat fit did not read 4 runs ($1):"$'\n'"$fit" ;;
    2) grep -q 'fit of the 4 runs.*is not identified' <<<"$fit" || fail "qat fit out exited 2 ($1):"$'\n'"$fit" ;;
    *) fail "qat fit out exited $rc ($1):"$'\n'"$fit" ;;
  esac
}
fit_reads_4 "first array"
note "first array: 4 tasks completed, qat fit read 4 runs"

# ---------------------------------------------------------------- resubmission
# Every file of the runs left alone, with its modification time (ns) and checksum; not the
# lock files, which a sweep takes (writing its pid) to decide under the lock that a run is done.
snapshot() {
  find out/dim16-tokens4096 out/dim24-tokens2048 -type f ! -name '*.lock' -printf '%p %T@ ' -exec cksum {} \; | sort
}
before=$(snapshot)
rm -rf out/dim16-tokens2048
rm -rf out/dim24-tokens4096
bases=(out/.sweep/base-*.yaml) # the base every task's workers read, named by its content
[ ${#bases[@]} -eq 1 ] && [ -f "${bases[0]}" ] || fail "expected one out/.sweep/base-HASH.yaml, found: ${bases[*]}"
timeout 60 "$qat" train "${bases[0]}" --set model.dim=24 --set train.tokens=4096 \
  --set name=dim24-tokens4096 --set threads=1 --out out --stop-after 8 --quiet ||
  fail "could not leave dim24-tokens4096 interrupted"
[ -f out/dim24-tokens4096/ckpt.h5 ] || fail "the interrupted run has no checkpoint"
plan=$("$qat" sweep tiny.yaml --dry-run)
grep -q 'would start 1, resume 1, skip 2 completed' <<<"$plan" || fail "unexpected plan before resubmitting:"$'\n'"$plan"

first=$job_id
submit_and_wait 90
logs=(out/.sweep/slurm-"${job_id}"_*.log)
[ ${#logs[@]} -eq 4 ] || fail "expected 4 task logs of job $job_id, found ${#logs[@]}"
summaries=$(cat "${logs[@]}" | grep '^qat sweep: 1 runs: ')
count() { grep -c -- "$1" <<<"$summaries"; }
[ "$(count '1 started, 0 resumed, 0 skipped')" = 1 ] || fail "the deleted run was not started once:"$'\n'"$summaries"
[ "$(count '0 started, 1 resumed, 0 skipped')" = 1 ] || fail "the interrupted run was not resumed once:"$'\n'"$summaries"
[ "$(count '0 started, 0 resumed, 1 skipped')" = 2 ] || fail "the finished runs were not skipped:"$'\n'"$summaries"
grep -q -- '--resume' out/dim24-tokens4096/train.log || fail "dim24-tokens4096 was not resumed from its checkpoint"
plan=$("$qat" sweep tiny.yaml --dry-run)
grep -q 'would start 0, resume 0, skip 4 completed' <<<"$plan" || fail "not all runs completed after resubmitting:"$'\n'"$plan"
[ "$(snapshot)" = "$before" ] || fail "files of finished runs changed:"$'\n'"$before"$'\n'"now:"$'\n'"$(snapshot)"
fit_reads_4 "after resubmitting"
note "resubmitted array (job $job_id after $first): 1 started, 1 resumed, 2 skipped untouched"
exit 0
