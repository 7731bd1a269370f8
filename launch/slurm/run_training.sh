# The body of the sbatch templates (gpu.sbatch, cpu.sbatch), sourced by them: one
# `ratrain train` task per GPU (or per CPU slot) through srun, resumed from the run's
# `latest` checkpoint, and requeued when Slurm warns of the end.
#
#   sbatch [options] launch/slurm/gpu.sbatch CONFIG.ini [section.key=value ...]
#
# Signals: the templates ask for --signal=B:USR1@<lead>, so the warning reaches this
# batch shell only; it is forwarded to srun, which passes it to every task. A task stops
# at the next step boundary with a checkpoint and exit status 75 (launch/stop_signals.hpp);
# this script then requeues the job (--requeue) and exits 0, and the requeued job resumes
# from `latest` (checkpoint.resume=auto); Slurm holds a requeued job back for the credential
# lifetime (AuthInfo cred_expire, 120 s by default) before it may start again. SIGTERM
# (preemption, scancel, which send it to every process of the job) takes the same way,
# within KillWait: a running job that is scancel'ed comes back, so cancel it again once
# it is pending to end it. Any other exit status is the job's. tests/slurm runs this
# on a real slurmctld/slurmd (CPU, 4 tasks, USR1 to the batch shell, requeue, resume).
#
# Environment: RATRAIN (the binary; default build/<preset>/launch/ratrain under the
# submit directory), RATRAIN_PRESET (cuda or cpu, set by the template), MPI_PLUGIN
# (srun --mpi=..., default pmix).
set -uo pipefail

readonly EXIT_REQUEUE=75
cd "${SLURM_SUBMIT_DIR:?run this under sbatch}"
RATRAIN=${RATRAIN:-$SLURM_SUBMIT_DIR/build/${RATRAIN_PRESET:-cuda}/launch/ratrain}
[[ -x $RATRAIN ]] || { echo "ratrain binary not found at $RATRAIN (set RATRAIN)" >&2; exit 1; }
[[ $# -ge 1 ]] || { echo "usage: sbatch <template> CONFIG.ini [section.key=value ...]" >&2; exit 2; }

echo "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on $SLURM_JOB_NUM_NODES node(s), $SLURM_NTASKS task(s): $RATRAIN train $*"
# --kill-on-bad-exit: one failed task ends the step instead of leaving its peers waiting
# in a collective. OMP threads: the CPUs Slurm gave each task.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
srun --mpi="${MPI_PLUGIN:-pmix}" --kill-on-bad-exit=1 "$RATRAIN" train "$@" checkpoint.resume=auto &
srun_pid=$!
forward() { kill -s "$1" "$srun_pid" 2>/dev/null || true; }
trap 'forward USR1' USR1
trap 'forward TERM' TERM
# A trapped signal interrupts `wait` (status 128 + its number) while srun still runs:
# wait again. Once srun has ended, `wait` gives its exit status (bash keeps it), also when
# srun ended just as a signal interrupted the wait above. srun's status: the largest of
# its tasks' exit statuses.
while kill -0 "$srun_pid" 2>/dev/null; do
  wait "$srun_pid"
done
wait "$srun_pid"
status=$?

if [[ $status -eq $EXIT_REQUEUE ]]; then
  echo "job $SLURM_JOB_ID: the tasks' exit status $EXIT_REQUEUE: checkpointed on a signal; requeueing"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    echo "job $SLURM_JOB_ID: scontrol requeue failed; resubmit the same command to resume" >&2
    exit "$EXIT_REQUEUE"
  fi
  exit 0
fi
exit "$status"
