#!/usr/bin/env python3
"""End-to-end checkpoint tests of the `ratrain` binary (issue #5; ctest label e2e).

resume: 20 iterations uninterrupted against 10, a new process resuming from the
  checkpoint, and 10 more (train.stop_at=10, then checkpoint.resume=auto), in one process
  and under `mpirun -np 2` with dp=2 and with tp=2: the training lines of metrics.jsonl
  (losses, gradient norms, LR) must be identical and model.h5 bitwise equal (h5diff
  compares exactly). Then the newest checkpoint's shard is truncated: resuming fails
  with exit status 1 and a message naming the shard file and checkpoint.fallback;
  with checkpoint.fallback=true it resumes from the checkpoint before, and its
  iterations again match the uninterrupted run's. And the tp=2 run's checkpoint resumed
  by one process and under dp=2 (another layout) gives losses within 1e-5.
signal: a run (one process, and mpirun -np 2 with dp=2) sent SIGUSR1 mid-training stops
  at the next step boundary with a committed checkpoint and exit status 75 (requeue);
  relaunched, it resumes from `latest` and its iterations are exactly those of an
  uninterrupted run. SIGTERM does the same; under mpirun it goes to ONE rank only (as a
  signal may reach a single task), and both ranks stop at the same iteration. (mpirun
  itself turns a SIGTERM it receives into exit status 1, so it is not sent to mpirun.)
fault: under mpirun -np 2 (dp=2), one rank SIGKILLed while a checkpoint is being written
  (its step_N.partial folder exists, not yet committed) makes the job end non-zero within
  a bounded time; `latest` still names the previous complete checkpoint, which a relaunch
  verifies (CRC of every dataset) and resumes from, continuing exactly as the
  uninterrupted run. One rank killed mid-step also ends the job within that time.
hang: under mpirun -np 2 (dp=2) with train.hang_timeout_s=5, one rank SIGSTOPped
  mid-training (a hung rank: alive, never joining the next collective) makes the other
  rank's watchdog (launch/step_watchdog.hpp) print one line naming itself, the iteration
  and the timeout and end with exit status 70, and mpirun end the job non-zero (not 75,
  which would requeue) within the timeout plus 30 s. Once stopping rank 1, once rank 0.
  (mpirun sends SIGCONT before its kill: the stopped rank may print its own line too.)
  And before the first iteration: a run resuming from a checkpoint whose meta.json is a
  FIFO (a read that never returns, like a hung network file system) is ended by its
  watchdog naming the start-up phase "checkpoint resume".
index: index.h5 of a 2-rank tensor-parallel run, read with h5py, holds every parameter
  as the global tensor, bitwise the model.h5 the run wrote, and the moments in the same
  shapes; h5dump reads a virtual dataset whole.
metrics: every training line of a 2-rank tensor-parallel run has an MFU in (0, 1] and a
  split of the step into compute and communication that adds up, with communication > 0
  (the tensor-parallel all-reduces); one process reports communication 0.
inspect: `ratrain inspect` of a 2-rank tensor-parallel run lists its checkpoints with
  `latest` marked; of its latest checkpoint with --verify, the iteration, the layout that
  wrote it, as many parameter values as model.h5 holds, and a clean verification; with
  a flipped byte in a shard, --verify exits 1 naming the shard file and a dataset.

Usage: checkpoint_e2e.py resume|signal|fault|hang|index|metrics|inspect RATRAIN MPIEXEC TEXT WORK [TOOL]
"""
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

ITERS = 20
MODEL = ["model.d_model=32", "model.num_heads=2", "model.num_layers=2", "model.dilation=4",
         "train.seq_len=32", "train.batch_size=4", f"train.iters={ITERS}", "run.log_every=5"]
# Resumed under another layout, f32 losses of 10 iterations (issue #5 acceptance).
RESHARD_TOLERANCE = 1e-5
# Open MPI refuses root unless told twice; more ranks than cores; one thread per rank.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMP_NUM_THREADS": "1"}


def run(args, expect_rc=0):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          env={**os.environ, **MPI_ENV})
    sys.stdout.write(done.stdout + done.stderr)
    if done.returncode != expect_rc:
        sys.exit(f"exit status {done.returncode}, expected {expect_rc}: {' '.join(map(str, args))}")
    return done.stdout + done.stderr


class Runner:
    def __init__(self, ratrain, mpiexec, text, work):
        self.ratrain, self.mpiexec, self.work = ratrain, mpiexec, pathlib.Path(work)
        shutil.rmtree(self.work, ignore_errors=True)
        run([ratrain, "tokenize", "--input", text, "--output", self.work / "data"])

    def command(self, ranks, run_dir, *overrides):
        launcher = [self.mpiexec, "-np", ranks, "--oversubscribe"] if ranks > 1 else []
        return [str(a) for a in launcher + [self.ratrain, "train",
                                            f"data.train={self.work}/data/train.h5", *MODEL,
                                            f"run.dir={run_dir}", *overrides]]

    def train(self, ranks, run_dir, *overrides, expect_rc=0):
        return run(self.command(ranks, run_dir, *overrides), expect_rc)


def train_lines(run_dir):
    """The training lines of metrics.jsonl without the timings."""
    lines = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "train":
            lines.append({k: v for k, v in record.items()
                          if k == "iter" or k == "lr" or k.startswith(("loss_", "grad_norm_"))})
    return lines


def require(condition, message):
    if not condition:
        sys.exit("FAILED: " + message)


def resume_test(runner, h5diff):
    for name, ranks, layout in [("one process", 1, []), ("dp=2", 2, ["parallel.dp=2"]),
                                ("tp=2", 2, ["parallel.tp=2"])]:
        tag = name.replace(" ", "_").replace("=", "")
        reference, resumed = runner.work / f"ref_{tag}", runner.work / f"resumed_{tag}"
        runner.train(ranks, reference, *layout)
        runner.train(ranks, resumed, *layout, "checkpoint.every=5", "train.stop_at=10")
        require(len(train_lines(resumed)) == 10, f"{name}: the first launch ran 10 iterations")
        log = runner.train(ranks, resumed, *layout, "checkpoint.every=5")
        require("resumed from" in log and "step_10" in log, f"{name}: resumed from step_10")
        require(train_lines(resumed) == train_lines(reference),
                f"{name}: 10 + resume + 10 iterations log other losses than 20")
        run([h5diff, reference / "model.h5", resumed / "model.h5"])
        print(f"{name}: 20 iterations == 10 + resume + 10 (metrics and model.h5 bitwise)")

    # Another layout: the tp=2 run's step_10 resumed by one process and under dp=2 tracks
    # the uninterrupted tp=2 run within the rounding of other summation orders.
    step_10 = runner.work / "resumed_tp2" / "checkpoints" / "step_10"
    want = train_lines(runner.work / "ref_tp2")[10:]
    for name, ranks, layout in [("one process", 1, []), ("dp=2", 2, ["parallel.dp=2"])]:
        resharded = runner.work / f"resharded_{ranks}"
        runner.train(ranks, resharded, *layout, f"checkpoint.resume={step_10}")
        got = train_lines(resharded)
        require(len(got) == 10 and all(
            abs(g[k] - w[k]) <= RESHARD_TOLERANCE * abs(w[k])
            for g, w in zip(got, want) for k in w if k.startswith("loss_")),
            f"tp=2 checkpoint resumed by {name}: losses within {RESHARD_TOLERANCE}")
        print(f"tp=2 checkpoint resumed by {name}: losses within {RESHARD_TOLERANCE} relative")

    # The one-process run kept step_10, step_15, step_20 (checkpoint.keep = 3).
    checkpoints = runner.work / "resumed_one_process" / "checkpoints"
    shard = checkpoints / "step_20" / "shard_0.h5"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    rerun = runner.work / "fallback"
    output = runner.train(1, rerun, f"checkpoint.dir={checkpoints}", expect_rc=1)
    require(str(shard) in output and "checkpoint.fallback=true" in output,
            "the truncated shard's error names the file and checkpoint.fallback")
    runner.train(1, rerun, f"checkpoint.dir={checkpoints}", "checkpoint.fallback=true")
    require(train_lines(rerun) == train_lines(runner.work / "ref_one_process")[15:],
            "after falling back to step_15 the run repeats iterations 15-19 exactly")
    print("truncated shard: clear error; fallback to step_15 continues exactly")


# Long enough that a signal sent after the fifth iteration arrives well before the end.
SIGNAL_ITERS = 300
EXIT_REQUEUE = 75


def rank_processes(launcher_pid):
    """The pids of the processes mpirun started (its children)."""
    found = subprocess.run(["pgrep", "-P", str(launcher_pid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def interrupt(runner, ranks, run_dir, signum, *overrides):
    """Starts a run, sends `signum` once 5 iterations are logged, returns its output.
    Under mpirun SIGUSR1 goes to mpirun (which forwards it), SIGTERM to one rank."""
    process = subprocess.Popen(runner.command(ranks, run_dir, *overrides), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, **MPI_ENV})
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(train_lines(run_dir)) >= 5:
            break
        time.sleep(0.01)
    if ranks > 1 and signum == signal.SIGTERM:
        children = rank_processes(process.pid)
        require(len(children) == ranks, f"mpirun runs {ranks} ranks (found {children})")
        os.kill(children[-1], signum)
    else:
        process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    sys.stdout.write(output)
    require(process.returncode == EXIT_REQUEUE,
            f"signal {signum}: exit status {process.returncode}, expected {EXIT_REQUEUE}")
    return output


def signal_test(runner, _tool):
    iters = f"train.iters={SIGNAL_ITERS}"
    for name, ranks, layout in [("one process", 1, []), ("dp=2", 2, ["parallel.dp=2"])]:
        tag = name.replace(" ", "_").replace("=", "")
        reference = runner.work / f"ref_{tag}"
        runner.train(ranks, reference, *layout, iters)
        for signum in (signal.SIGUSR1, signal.SIGTERM):
            stopped = runner.work / f"stopped_{tag}_{signum.name}"
            interrupt(runner, ranks, stopped, signum, *layout, iters)
            done = len(train_lines(stopped))
            require(0 < done < SIGNAL_ITERS, f"{name}: stopped early ({done} iterations)")
            latest = (stopped / "checkpoints" / "latest").read_text().strip()
            require(latest.endswith(f"step_{done}"),
                    f"{name}: latest ({latest}) is the checkpoint of iteration {done}")
            log = runner.train(ranks, stopped, *layout, iters)
            require("resumed from" in log, f"{name}: the relaunch resumed")
            require(train_lines(stopped) == train_lines(reference),
                    f"{name}, {signum.name}: stopped + resumed iterations differ from the "
                    "uninterrupted run")
            print(f"{name}, {signum.name}: stopped after iteration {done} with exit status "
                  f"{EXIT_REQUEUE}, resumed, {SIGNAL_ITERS} iterations as uninterrupted")


# A model large enough that writing a shard takes a while (~3.5 M parameters, values and
# two moments: ~40 MiB per save), so that a kill can land inside one.
FAULT_ITERS = 30
FAULT_MODEL = ["model.d_model=256", "model.num_heads=4", "model.num_layers=4",
               f"train.iters={FAULT_ITERS}", "checkpoint.every=2", "checkpoint.keep=100"]
# How long a job may take to end once one of its ranks is dead.
FAULT_DEADLINE_S = 60


def kill_rank_when(runner, run_dir, ready, *overrides):
    """Starts a dp=2 run, SIGKILLs rank 1 once ready() holds; returns (what ready() returned,
    seconds from the kill to the job's end). The job must end non-zero."""
    process = subprocess.Popen(runner.command(2, run_dir, "parallel.dp=2", *overrides),
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, **MPI_ENV})
    seen = None
    deadline = time.monotonic() + 120
    while seen is None and time.monotonic() < deadline and process.poll() is None:
        seen = ready()
        time.sleep(0.001)
    require(seen is not None, "the moment to kill a rank came before the run ended")
    os.kill(rank_processes(process.pid)[-1], signal.SIGKILL)
    killed = time.monotonic()
    try:
        output, _ = process.communicate(timeout=FAULT_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        require(False, f"the job still ran {FAULT_DEADLINE_S} s after one rank was killed")
    sys.stdout.write(output[-2000:])
    require(process.returncode != 0, "a job with a killed rank ended with exit status 0")
    return seen, time.monotonic() - killed


def fault_test(runner, _tool):
    reference = runner.work / "fault_reference"
    runner.train(2, reference, "parallel.dp=2", *FAULT_MODEL)

    # Mid-step: after a few iterations, outside any save's files.
    mid_step = runner.work / "fault_mid_step"
    _, took = kill_rank_when(
        runner, mid_step,
        lambda: True if (mid_step / "metrics.jsonl").exists() and len(train_lines(mid_step)) >= 3
        else None, *FAULT_MODEL)
    print(f"rank killed mid-step: the job ended non-zero {took:.1f} s later")

    # Mid-save: the kill must find a .partial folder that is still uncommitted afterwards;
    # a kill that lands after the commit proves nothing, so try again (fresh run folder).
    for attempt in range(5):
        run_dir = runner.work / f"fault_mid_save_{attempt}"
        checkpoints = run_dir / "checkpoints"

        def partial_after_a_commit():
            if not (checkpoints / "latest").exists():
                return None
            partial = sorted(checkpoints.glob("step_*.partial"))
            return partial[0] if partial else None

        partial, took = kill_rank_when(runner, run_dir, partial_after_a_commit, *FAULT_MODEL)
        if partial.exists():
            break
        print(f"attempt {attempt}: the save committed before the kill landed; again")
    else:
        require(False, "no kill landed inside a save in 5 attempts")
    latest = (checkpoints / "latest").read_text().strip()
    print(f"rank killed while {partial.name} was written: the job ended non-zero {took:.1f} s "
          f"later; latest is still {latest}")
    require(partial.name != pathlib.Path(latest).name, "latest names a complete checkpoint")
    log = runner.train(2, run_dir, "parallel.dp=2", *FAULT_MODEL)
    require("resumed from" in log and latest in log, f"the relaunch resumed from {latest}")
    # The killed launch logged iterations after the checkpoint that the relaunch ran
    # again: the last record of each iteration is the one that counts.
    by_iter = {line["iter"]: line for line in train_lines(run_dir)}
    require([by_iter[i] for i in sorted(by_iter)] == train_lines(reference),
            "resumed after the fault, the iterations differ from the uninterrupted run")
    print(f"relaunch verified and resumed {latest}; {FAULT_ITERS} iterations as uninterrupted")


HANG_TIMEOUT_S = 5
# How long a job may take to end once one of its ranks hangs: the watchdog's timeout plus
# the launcher ending the others (the stopped rank too: SIGKILL ends a stopped process).
HANG_DEADLINE_S = HANG_TIMEOUT_S + 30
# More iterations than the test lets run: the stop always lands mid-training.
HANG_ITERS = 10000
EXIT_HANG = 70  # launch/step_watchdog.hpp kExitHang


def world_rank(pid):
    """The MPI world rank of a process that mpirun started (Open MPI's environment)."""
    for entry in pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if entry.startswith(b"OMPI_COMM_WORLD_RANK="):
            return int(entry.split(b"=", 1)[1])
    require(False, f"process {pid} has no OMPI_COMM_WORLD_RANK in its environment")


def end_leftovers(pids, ratrain):
    """SIGKILLs (which ends a stopped process too) and SIGCONTs whichever of `pids` still
    runs `ratrain`: no stopped rank may outlive the test, and a pid reused since is spared."""
    for pid in pids:
        try:
            if ratrain not in pathlib.Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                continue
            os.kill(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGCONT)
        except (FileNotFoundError, ProcessLookupError):
            pass


def hang_test(runner, _tool):
    for stopped_rank in (1, 0):
        running_rank = 1 - stopped_rank
        run_dir = runner.work / f"hang_stop_rank{stopped_rank}"
        process = subprocess.Popen(
            runner.command(2, run_dir, "parallel.dp=2", f"train.iters={HANG_ITERS}",
                           f"train.hang_timeout_s={HANG_TIMEOUT_S}"),
            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, **MPI_ENV})
        ranks = {}
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and process.poll() is None:
                if (run_dir / "metrics.jsonl").exists() and len(train_lines(run_dir)) > 2:
                    break
                time.sleep(0.01)
            require(process.poll() is None and (run_dir / "metrics.jsonl").exists() and
                    len(train_lines(run_dir)) > 2, "3 iterations ran and the run goes on")
            ranks = {world_rank(pid): pid for pid in rank_processes(process.pid)}
            require(sorted(ranks) == [0, 1], f"mpirun runs ranks 0 and 1 (found {ranks})")
            os.kill(ranks[stopped_rank], signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                output, _ = process.communicate(timeout=HANG_DEADLINE_S)
            except subprocess.TimeoutExpired:
                require(False, f"the job still ran {HANG_DEADLINE_S} s after rank {stopped_rank} "
                        "was stopped")
            took = time.monotonic() - stopped
        finally:
            end_leftovers(ranks.values(), str(runner.ratrain))
            if process.poll() is None:
                process.kill()
                process.wait()
        sys.stdout.write(output[-3000:])
        status = process.returncode
        require(status != 0 and status != EXIT_REQUEUE,
                f"stopped rank {stopped_rank}: exit status {status}, expected non-zero and not "
                f"{EXIT_REQUEUE} (a requeue)")
        line = (rf"error: rank {running_rank} on \S+: iteration \d+ has not finished after \d+ s "
                rf"\(train\.hang_timeout_s = {HANG_TIMEOUT_S}\); aborting the job with exit "
                rf"status {EXIT_HANG}")
        require(re.search(line, output),
                f"stopped rank {stopped_rank}: rank {running_rank}'s watchdog line in the output")
        print(f"rank {stopped_rank} stopped: rank {running_rank}'s watchdog ended the job "
              f"{took:.1f} s later with exit status {status}")
    startup_hang_test(runner)


def startup_hang_test(runner):
    """A start-up phase that never ends: the watchdog is armed before the first iteration."""
    checkpoint = runner.work / "hung_file_system" / "step_5"
    checkpoint.mkdir(parents=True)
    os.mkfifo(checkpoint / "meta.json")  # opening it for reading waits for a writer forever
    command = runner.command(1, runner.work / "hang_startup", f"checkpoint.resume={checkpoint}",
                             f"train.hang_timeout_s={HANG_TIMEOUT_S}")
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_DEADLINE_S,
                              env={**os.environ, **MPI_ENV})
    except subprocess.TimeoutExpired:
        require(False, f"a run stuck in its checkpoint resume still ran {HANG_DEADLINE_S} s later")
    output = done.stdout + done.stderr
    sys.stdout.write(output[-3000:])
    require(done.returncode == EXIT_HANG,
            f"stuck resume: exit status {done.returncode}, expected {EXIT_HANG}")
    require(re.search(rf"error: rank 0 on \S+: checkpoint resume before the first iteration has "
                      rf"not finished after \d+ s \(train\.hang_timeout_s = {HANG_TIMEOUT_S}\)",
                      output), "the watchdog's line names the start-up phase")
    print(f"stuck checkpoint resume: the watchdog ended the run {time.monotonic() - started:.1f} s "
          f"after its start with exit status {done.returncode}")


def index_test(runner, h5dump):
    import h5py
    import numpy as np
    run_dir = runner.work / "tp2"
    runner.train(2, run_dir, "parallel.tp=2", "train.iters=4", "checkpoint.every=4")
    index_path = run_dir / "checkpoints" / "step_4" / "index.h5"
    with h5py.File(index_path, "r") as index, h5py.File(run_dir / "model.h5", "r") as model:
        names = sorted(model["params"])
        require(sorted(index["params"]) == names, "index.h5 lists every parameter")
        for name in names:
            want = model["params"][name][()]
            got = index["params"][name][()]
            require(got.shape == want.shape and np.array_equal(got.view(np.uint32),
                                                               want.view(np.uint32)),
                    f"index.h5 params/{name} is bitwise model.h5's")
            for moment in ("exp_avg", "exp_avg_sq"):
                m = index[moment][name][()]
                require(m.shape == want.shape and np.all(np.isfinite(m)) and np.any(m != 0),
                        f"index.h5 {moment}/{name}: global shape, every element from a shard")
    print(f"h5py: {len(names)} parameters and their moments read whole from {index_path}")
    dump = subprocess.run([h5dump, "-d", "/params/embedding.wte.weight", index_path],
                          capture_output=True, text=True)
    require(dump.returncode == 0 and "( 259, 32 )" in dump.stdout,
            "h5dump reads the embedding whole (259 x 32)")


def metrics_test(runner, _tool):
    for ranks, layout in [(2, ["parallel.tp=2"]), (1, [])]:
        run_dir = runner.work / f"np{ranks}"
        runner.train(ranks, run_dir, *layout, "train.iters=4")
        lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in lines if r["event"] == "train"]
        require(len(train) == 4, f"np {ranks}: four training lines")
        for r in train:
            require(0 < r["mfu"] <= 1, f"np {ranks}: MFU in (0, 1], got {r['mfu']}")
            require(abs(r["compute_s"] + r["comm_s"] - r["step_s"]) <= 1e-9 * r["step_s"] + 1e-12,
                    f"np {ranks}: compute_s + comm_s = step_s, got {r}")
            if ranks == 1:
                require(r["comm_s"] == 0, f"one process communicates nothing, got {r['comm_s']}")
            else:
                require(0 < r["comm_s"] < r["step_s"], f"np 2: 0 < comm_s < step_s, got {r}")
    print("metrics: MFU and the compute / communication split as expected")


def inspect_test(runner, _tool):
    run_dir = runner.work / "tp2"
    runner.train(2, run_dir, "parallel.tp=2", "train.iters=4", "checkpoint.every=2")
    listing = run([runner.ratrain, "inspect", run_dir])
    require(re.search(r"step_4 .*<- latest", listing) and "step_2" in listing,
            "the run's checkpoints listed, newest first, latest marked")
    checkpoint = run_dir / "checkpoints" / "step_4"
    report = run([runner.ratrain, "inspect", checkpoint, "--verify"])
    require("iteration 4 (8 optimizer steps)" in report, "the iteration and optimizer steps")
    require("written by layout tp=2 sp=1 pp=1 dp=1: 2 shard files" in report,
            "the layout that wrote it")
    require(re.search(r"verified: \d+ datasets in 2 shard files", report),
            "every dataset of both shards verified")
    values = re.search(r"(\d[\d,]*) values\n", report)
    model = run([runner.ratrain, "inspect", run_dir / "model.h5"])
    require(values and f"{values.group(1)} values (the config's count: {values.group(1)})" in model,
            "the checkpoint holds as many parameter values as model.h5 and the config count")

    shard = checkpoint / "shard_1.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the datasets' bytes, past the file's metadata
    shard.write_bytes(bytes(data))
    failure = run([runner.ratrain, "inspect", checkpoint, "--verify"], expect_rc=1)
    require("shard_1.h5" in failure and "dataset '" in failure,
            "a corrupt shard named with its file and dataset")
    print("inspect: run listing, checkpoint report and verification as expected")


def main():
    mode, ratrain, mpiexec, text, work, tool = sys.argv[1:7]
    runner = Runner(ratrain, mpiexec, text, work)
    {"resume": resume_test, "signal": signal_test, "fault": fault_test,
     "hang": hang_test, "index": index_test, "metrics": metrics_test,
     "inspect": inspect_test}[mode](runner, tool)


if __name__ == "__main__":
    main()
