#!/usr/bin/env python3
"""Real Slurm: a job of launch/slurm/cpu.sbatch is preempted, requeued and resumed
(issue #5 acceptance; ctest slurm_requeue, label e2e).

What it proves: the sbatch template and launch/slurm/run_training.sh work under a real
slurmctld and slurmd, not only under mpirun. A warning signal delivered the way Slurm
delivers --signal=B:USR1 (to the batch shell only) is forwarded to srun and by srun to
the 4 `ratrain train` tasks (Open MPI through srun's PMIx plugin); they stop at one step
boundary with a committed checkpoint and exit status 75; the script requeues the job;
Slurm starts it again with SLURM_RESTART_COUNT=1; it resumes from `latest` and ends
COMPLETED, having logged exactly the training lines (losses, gradient norms, LR of all
600 iterations) of an uninterrupted run of the same configuration under mpirun.

How, in order, every wait bounded:
  1. Slurm and munge from Debian (apt-get install slurm-wlm munge) unless present.
     Installing and slurmd need root: without it the test FAILS (never skips).
  2. `ratrain tokenize` of tests/e2e/data/sample.txt; the reference run:
     mpirun -np 4 ratrain train <tiny model of checkpoint_e2e.py> parallel.tp=2
     parallel.dp=2 train.iters=600.
  3. A private cluster on localhost in a fresh folder under /tmp, nothing read from
     /etc/slurm: munged with its own key and socket; slurmctld and slurmd on free ports
     with a generated slurm.conf (one node of max(4, nproc) CPUs, config_overrides so a
     smaller machine is not drained; proctrack/linuxproc and task/none, which need
     neither systemd nor cgroups; AuthInfo cred_expire=10, since Slurm holds a requeued
     job back for cred_expire + 1 seconds, 121 by default; sched_interval=2, so that it
     starts once eligible rather than at the scheduler's next periodic pass, 60 s).
  4. sbatch --ntasks=4 launch/slurm/cpu.sbatch <the same overrides>, from the checkout
     (the template sources run_training.sh from the submit folder), with RATRAIN naming
     the binary under test, Open MPI allowed to run as root and told to yield while it
     waits (4 tasks may share fewer cores). srun --mpi=pmix, the template's default.
  5. Once 10 iterations are logged: scancel --signal=USR1 --batch <job>.
  6. Until the job is COMPLETED (a held job is released): then its output must show
     the stop (SIGUSR1, tasks' exit status 75, the requeue), restart 1 resuming from
     the checkpoint of the iteration it stopped after, and scontrol Restarts=1, exit 0;
     metrics.jsonl's training lines must equal the reference's.
  7. Always: any job left cancelled, the daemons shut down; on failure their logs and the
     job's output are printed.

Usage: slurm_requeue_test.py RATRAIN REPO_ROOT MPIEXEC WORK
"""
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

# The tiny model, the Open MPI environment and the comparison of checkpoint_e2e.py.
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "e2e"))
from checkpoint_e2e import MODEL, MPI_ENV, train_lines  # noqa: E402

ITERS = 600  # the signal (after 10) lands far from the end even on a fast machine
TASKS = 4
LAYOUT = ["parallel.tp=2", "parallel.dp=2"]
# What cpu.sbatch and run_training.sh append to the overrides: the reference gets them too.
TEMPLATE_ARGS = ["train.device=cpu", "checkpoint.resume=auto"]
EXIT_REQUEUE = 75
SIGNAL_AFTER = 10         # iterations logged before the warning signal
CRED_EXPIRE_S = 10        # the requeued job waits CRED_EXPIRE_S + 1 s (slurmctld)
NODE = "ratrain-node"
SLURM_COMMANDS = ["munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "scontrol",
                  "scancel", "sinfo", "squeue", "srun"]
# States after which the job never runs again (squeue(1) "JOB STATE CODES").
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}


class Failure(Exception):
    pass


def require(condition, message):
    if not condition:
        raise Failure(message)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# Every step's wait ends by this deadline, which leaves the cleanup (at most 30 s for the
# jobs, 15 s per daemon, its commands 30 s each) time to finish before ctest's TIMEOUT
# (900 s) would kill the test and leave the daemons running.
DEADLINE = time.monotonic() + 720


def bounded(timeout_s, cleanup):
    """timeout_s, shortened to the time left before DEADLINE (unless cleaning up)."""
    if cleanup:
        return timeout_s
    left = DEADLINE - time.monotonic()
    if left <= 0:
        raise Failure("the test ran out of its time (DEADLINE)")
    return min(timeout_s, left)


def wait_for(what, timeout_s, probe, interval_s=0.5, cleanup=False):
    """Calls probe() until it returns something true, at most timeout_s; returns it."""
    timeout_s = bounded(timeout_s, cleanup)
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def run(args, timeout_s, env=None, cwd=None, check=True, cleanup=False):
    args = [str(a) for a in args]
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=bounded(timeout_s, cleanup))
    except subprocess.TimeoutExpired as e:
        raise Failure(f"timed out after {e.timeout:.0f} s: {' '.join(args)}") from None
    if check and done.returncode != 0:
        raise Failure(f"exit status {done.returncode}: {' '.join(map(str, args))}\n"
                      f"{done.stdout}{done.stderr}")
    return done


# --- 1. Slurm and munge from Debian ---------------------------------------------------
def install_slurm():
    missing = [c for c in SLURM_COMMANDS if not shutil.which(c)]
    if os.geteuid() != 0:
        raise Failure("this test needs root: it installs slurm-wlm and munge (missing: "
                      f"{' '.join(missing) or 'none'}) and runs slurmd, which launches the "
                      "tasks; run it as root (CI does)")
    if not missing:
        return
    log(f"installing slurm-wlm and munge (missing: {' '.join(missing)})")
    # The packages' scripts would start the system's daemons (they read /etc/slurm, which
    # has no slurm.conf): policy-rc.d (exit 101) forbids it while installing, as Debian's
    # container images do.
    policy = pathlib.Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], 240, env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm",
             "munge"], 420, env)
    finally:
        if own_policy:
            policy.unlink()
    still = [c for c in SLURM_COMMANDS if not shutil.which(c)]
    require(not still, f"after apt-get install, still missing: {' '.join(still)}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- 3. a private cluster on localhost -------------------------------------------------
class Cluster:
    """munged, slurmctld and one slurmd, configured and kept in a fresh folder."""

    def __init__(self):
        # Short (Unix socket paths are limited to 108 bytes) and traversable by all, as
        # munged demands of its socket's folder.
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="ratrain-slurm-", dir="/tmp"))
        self.root.chmod(0o755)
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.logs = {name: self.root / "log" / f"{name}.log"
                     for name in ("munged", "slurmctld", "slurmd")}
        # Slurm's commands, the job's included (sbatch exports this environment): our
        # slurm.conf, and nothing of a Slurm job this test may itself run in.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SQUEUE_"))}
        self.env["SLURM_CONF"] = str(self.conf)
        self.pids = {"munged": self.root / "munge" / "munged.pid",
                     "slurmctld": self.root / "slurmctld.pid",
                     "slurmd": self.root / "slurmd.pid"}

    def start(self):
        for sub in ("etc", "munge", "log", "state", "spool"):
            (self.root / sub).mkdir()
            (self.root / sub).chmod(0o755)  # whatever the umask
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        run(["munged", f"--key-file={key}", f"--socket={self.munge_socket}",
             f"--pid-file={self.pids['munged']}",
             f"--log-file={self.logs['munged']}", f"--seed-file={self.root / 'munge' / 'seed'}"],
            30)
        credential = run(["munge", "-n", "-S", self.munge_socket], 10).stdout
        decoded = subprocess.run(["unmunge", "-S", str(self.munge_socket)], input=credential,
                                 capture_output=True, text=True, timeout=10)
        require(decoded.returncode == 0, f"munge round trip failed: {decoded.stderr}")

        cpus = max(TASKS, os.cpu_count() or 1)
        host = socket.gethostname().split(".")[0]  # slurmctld checks it is SlurmctldHost
        self.conf.write_text(f"""\
# Generated by tests/slurm/slurm_requeue_test.py: one node on localhost.
ClusterName=ratraintest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job becomes eligible cred_expire + 1 s after the requeue.
AuthInfo=socket={self.munge_socket},cred_expire={CRED_EXPIRE_S}
StateSaveLocation={self.root / 'state'}
SlurmdSpoolDir={self.root / 'spool'}
SlurmctldPidFile={self.pids['slurmctld']}
SlurmdPidFile={self.pids['slurmd']}
SlurmctldLogFile={self.logs['slurmctld']}
SlurmdLogFile={self.logs['slurmd']}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={self.root / 'etc' / 'plugstack.conf'}
# No systemd, no cgroups needed (containers).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
# The requeued job becomes eligible by the clock, not by an event: without this it waits
# for the next periodic pass of the scheduler (60 s).
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
# The node's CPUs as written here, not as detected: no drain for "Low CPUs".
SlurmdParameters=config_overrides
MinJobAge=600
InactiveLimit=0
KillWait=30
MailProg=/bin/true
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")
        (self.root / "etc" / "plugstack.conf").write_text("")
        (self.root / "etc" / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")

        run(["slurmctld"], 60, self.env)
        run(["slurmd", "-N", NODE], 60, self.env)
        state = wait_for("the node to be idle", 60, lambda: self.node_state() == "idle" and "idle")
        log(f"cluster up in {self.root}: node {NODE} {state}, {cpus} CPUs")

    def node_state(self):
        done = run(["sinfo", "-h", "-N", "-n", NODE, "-o", "%T"], 15, self.env, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    def slurm(self, *args, timeout_s=30, check=True, cwd=None, env=None, cleanup=False):
        return run(list(args), timeout_s, env or self.env, cwd, check, cleanup)

    def job(self, job_id):
        """scontrol show job's fields as a dict."""
        out = self.slurm("scontrol", "show", "job", "-o", job_id).stdout
        return dict(field.split("=", 1) for field in out.split() if "=" in field)

    def stop(self):
        """Cancels every job and shuts the daemons down; a daemon this test started that
        outlives that is killed by its pid."""
        if alive_from(self.pids["slurmctld"]):
            try:
                self.slurm("scancel", "--user=root", check=False, cleanup=True)
                wait_for("the jobs to end", 30, lambda: not self.slurm(
                    "squeue", "-h", check=False, cleanup=True).stdout.strip(), cleanup=True)
            except Failure as e:
                log(str(e))
            self.slurm("scontrol", "shutdown", check=False, cleanup=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = alive_from(self.pids[name])
            if not pid:
                continue
            if name == "munged":
                os.kill(pid, signal.SIGTERM)
            try:
                wait_for(f"{name} to end", 15, lambda: not alive(pid), cleanup=True)
            except Failure:
                log(f"{name} (pid {pid}) outlived its shutdown: SIGKILL")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

def print_logs(folder):
    for name in ("slurmctld", "slurmd", "munged"):
        path = folder / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else "(none)\n"
        tail = "".join(text.splitlines(keepends=True)[-150:])
        print(f"----- {name} log ({path}), last 150 lines -----\n{tail}", end="")


def alive_from(pid_file):
    """The pid in pid_file when that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by its parent) counts as ended.
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def main():
    ratrain, repo, mpiexec, work = (pathlib.Path(a).resolve() for a in sys.argv[1:5])
    install_slurm()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    # --- 2. data and the uninterrupted reference ---------------------------------------
    run([ratrain, "tokenize", "--input", repo / "tests" / "e2e" / "data" / "sample.txt",
         "--output", work / "data"], 120)
    overrides = [f"data.train={work}/data/train.h5", *MODEL, f"train.iters={ITERS}", *LAYOUT,
                 "run.log_every=50"]
    reference = work / "reference"
    start = time.monotonic()
    run([mpiexec, "-np", TASKS, "--oversubscribe", ratrain, "train", *overrides,
         f"run.dir={reference}", *TEMPLATE_ARGS], 240, {**os.environ, **MPI_ENV})
    want = train_lines(reference)
    require(len(want) == ITERS, f"the reference logged {len(want)} iterations, not {ITERS}")
    log(f"reference: mpirun -np {TASKS}, {ITERS} iterations in {time.monotonic() - start:.0f} s; "
        f"last: {want[-1]}")

    cluster = Cluster()
    output, failed = None, False
    try:
        cluster.start()
        mpi = cluster.slurm("srun", "--mpi=list")
        log("srun --mpi=list: " + " ".join((mpi.stdout + mpi.stderr).split()))

        # --- 4. submit the template ----------------------------------------------------
        run_dir = work / "slurm_run"
        # The node claims max(4, nproc) CPUs: on fewer cores, ranks that spin while they
        # wait in a collective starve the others (mpirun --oversubscribe turns yielding on
        # by itself; srun does not). Measured: 300 iterations in 14 s instead of 190 s, 2 cores.
        job_env = {**cluster.env, **MPI_ENV, "RATRAIN": str(ratrain),
                   "OMPI_MCA_mpi_yield_when_idle": "1"}
        job_env.pop("MPI_PLUGIN", None)  # the template's default, pmix, is under test
        submitted = cluster.slurm(
            "sbatch", "--parsable", f"--ntasks={TASKS}", f"--output={work}/job-%j.out",
            "launch/slurm/cpu.sbatch", *overrides, f"run.dir={run_dir}", cwd=repo,
            env=job_env).stdout
        job_id = submitted.strip().split(";")[0]
        output = work / f"job-{job_id}.out"
        log(f"submitted job {job_id}: sbatch --ntasks={TASKS} launch/slurm/cpu.sbatch ...")

        # --- 5. the warning signal, the way --signal=B:USR1 delivers it -----------------
        def progress():
            job = cluster.job(job_id)
            require(job.get("JobState") not in FINAL_STATES,
                    f"job {job_id} ended ({job.get('JobState')}) before it was signalled")
            metrics = run_dir / "metrics.jsonl"
            return metrics.exists() and len(train_lines(run_dir)) >= SIGNAL_AFTER
        wait_for(f"{SIGNAL_AFTER} iterations of job {job_id}", 180, progress, interval_s=0.2)
        cluster.slurm("scancel", "--signal=USR1", "--batch", job_id)
        log(f"job {job_id}: scancel --signal=USR1 --batch after "
            f"{len(train_lines(run_dir))} logged iterations")

        # --- 6. requeued, resumed, completed -------------------------------------------
        released, seen = [], []

        def completed():
            job = cluster.job(job_id)
            state, reason = job.get("JobState"), job.get("Reason", "")
            if not seen or seen[-1] != (state, reason, job.get("Restarts")):
                seen.append((state, reason, job.get("Restarts")))
                log(f"job {job_id}: {state} (reason {reason}), restarts {job.get('Restarts')}")
            if state == "PENDING" and reason.startswith("JobHeld"):
                log(f"job {job_id} is held ({reason}): scontrol release")
                cluster.slurm("scontrol", "release", job_id)
                released.append(reason)
            require(state not in FINAL_STATES - {"COMPLETED"},
                    f"job {job_id} ended {state} ({reason}), exit code {job.get('ExitCode')}")
            return job if state == "COMPLETED" else None
        job = wait_for(f"job {job_id} to be requeued, resumed and COMPLETED", 300, completed,
                       interval_s=1)
        text = output.read_text()
        print(f"----- output of job {job_id}, without the progress lines -----")
        print("".join(line for line in text.splitlines(keepends=True)
                      if " iter " not in line), end="")
        print("----- end of output -----")

        require(job.get("Restarts") == "1" and job.get("ExitCode") == "0:0",
                f"scontrol: Restarts={job.get('Restarts')} ExitCode={job.get('ExitCode')}, "
                "expected 1 and 0:0")
        first, _, second = text.partition(f"job {job_id} (restart 1)")
        require(second, "the job ran again with SLURM_RESTART_COUNT=1")
        stop = re.search(r"received SIGUSR1: stopping after iteration (\d+)", first)
        require(stop, "the first run stopped on SIGUSR1 (forwarded by the batch shell and srun)")
        stopped_after = int(stop.group(1))
        require(SIGNAL_AFTER <= stopped_after < ITERS,
                f"stopped after iteration {stopped_after}, within ({SIGNAL_AFTER}, {ITERS})")
        require(f"tasks' exit status {EXIT_REQUEUE}" in first and "requeueing" in first,
                f"run_training.sh saw exit status {EXIT_REQUEUE} and requeued the job")
        resumed = re.search(r"resumed from (\S*step_(\d+))", second)
        require(resumed and int(resumed.group(2)) == stopped_after,
                f"the requeued run resumed from step_{stopped_after}")
        got = train_lines(run_dir)
        require(got == want, f"the stopped + resumed job logged other training lines than "
                f"the uninterrupted run ({len(got)} lines against {len(want)})")
        require((run_dir / "model.h5").exists(), "the requeued run wrote model.h5")
        log(f"job {job_id}: stopped after iteration {stopped_after} (exit status "
            f"{EXIT_REQUEUE}), requeued, restart 1 resumed from {resumed.group(1)}, "
            f"COMPLETED{' after scontrol release' if released else ''}; "
            f"{ITERS} training lines == the uninterrupted mpirun run's")
    except Exception as e:  # noqa: BLE001  (any error: show why, then clean up)
        if not isinstance(e, Failure):
            traceback.print_exc()
        print(f"FAILED: {e}", flush=True)
        if output and output.exists():
            print(f"----- output of the job ({output}) -----\n{output.read_text()}", end="")
        failed = True
    finally:
        cluster.stop()
        shutil.copytree(cluster.root / "log", work / "slurm_logs", dirs_exist_ok=True)
        shutil.rmtree(cluster.root, ignore_errors=True)
    if failed:  # the daemons write their logs out as they stop
        print_logs(work / "slurm_logs")
        return 1
    print("PASSED: Slurm warning signal -> checkpoint (75) -> requeue -> resume -> COMPLETED, "
          "same losses as uninterrupted")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:  # before the cluster exists (install, reference run)
        sys.exit(f"FAILED: {e}")
