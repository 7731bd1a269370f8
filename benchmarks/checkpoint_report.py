#!/usr/bin/env python3
"""Table of the checkpoint benchmark (run_checkpoint_benchmark.sh): per save, the time
training was blocked and the background write; the resume's verify and load times.

Blocked time has two parts. save() blocks the training thread ("training blocked X s"
in the log: waiting for a previous save, the folder barrier, queuing the copies). The copy
of the state to the host then runs beside the next iteration, whose optimizer update
waits for it on the device: the extra time of that iteration over the median of
iterations away from saves is the second part. Their sum is what a save costs training.
"""
import argparse
import json
import re
import statistics
import sys
from pathlib import Path

BLOCKED = re.compile(r"checkpoint of iteration (\d+): training blocked ([\d.]+) s")
SHARD = re.compile(r"checkpoint shard \S+: ([\d.]+) GiB; waited ([\d.]+) s for the copy from the "
                   r"device, CRC-32 ([\d.]+) s, written and synced in ([\d.]+) s")
COMMIT = re.compile(r"checkpoint \S+ complete \(index and commit ([\d.]+) s\)")
STAGING = re.compile(r"checkpoints: ([\d.]+) GiB of (page-locked )?host memory for the shard copy \(([\d.]+) s\)")
RESUMED = re.compile(r"resumed from \S+ \(iteration (\d+).*verified in ([\d.]+) s, loaded in ([\d.]+) s\)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--launch-status", nargs=2, type=int, default=[0, 0])
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--every", type=int, default=0)
    ap.add_argument("--git", default="")
    a = ap.parse_args()
    out = Path(a.out)
    log = (out / "train.log").read_text(errors="replace")
    resume_log = (out / "resume.log").read_text(errors="replace") if (out / "resume.log").exists() else ""
    steps = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("event") == "train":
            steps[r["iter"]] = r["step_s"]

    saves = [(int(m[1]), float(m[2])) for m in BLOCKED.finditer(log)]
    shards = [tuple(map(float, m.groups())) for m in SHARD.finditer(log)]
    commits = [float(m[1]) for m in COMMIT.finditer(log)]
    staging = STAGING.search(log)
    # Iteration it (0-based) runs after `it` iterations are done: a save after N
    # iterations delays iteration N and, if the copy outlasts it, N + 1.
    after_save = {n + k for n, _ in saves for k in (0, 1)}
    steady = [s for it, s in steps.items() if it >= 3 and it not in after_save]
    median = statistics.median(steady) if steady else float("nan")

    rows, records = [], []
    for i, (n, blocked) in enumerate(saves):
        extra = sum(steps.get(n + k, median) - median for k in (0, 1))
        total = blocked + max(extra, 0.0)
        gib, wait, crc, write = shards[i] if i < len(shards) else (float("nan"),) * 4
        commit = commits[i] if i < len(commits) else float("nan")
        records.append(dict(iteration=n, blocked_s=blocked, next_iterations_extra_s=extra,
                            total_blocked_s=total, gib=gib, copy_wait_s=wait, crc_s=crc,
                            write_sync_s=write, write_gib_per_s=gib / write if write else None,
                            commit_s=commit))
        rows.append(f"| {n} | {blocked:.3f} | {extra:+.3f} | {total:.3f} | {gib:.2f} | {wait:.2f} | "
                    f"{crc:.1f} | {write:.1f} | {gib / write:.2f} | {commit:.1f} |")
    lines = [
        f"median iteration {median * 1e3:.1f} ms (batch {a.batch}, away from saves); "
        f"checkpoint every {a.every} iterations",
    ]
    if staging:
        lines.append(f"staging: {staging[1]} GiB of {'page-locked ' if staging[2] else ''}host memory, "
                     f"allocated once in {staging[3]} s at start-up")
    lines += [
        "| after iter | save() blocked s | next 2 iters extra s | training blocked s | shard GiB | "
        "copy wait s | CRC-32 s | write+fsync s | GiB/s | commit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    resumed = RESUMED.search(resume_log)
    if resumed:
        lines.append(f"resume from iteration {resumed[1]}: verified (CRC-32 of every dataset) "
                     f"in {resumed[2]} s, loaded in {resumed[3]} s")
    lines.append(f"launch exit statuses: {a.launch_status[0]}, {a.launch_status[1]}")
    if records:
        worst = max(r["total_blocked_s"] for r in records)
        lines.append(f"worst training blocked per save: {worst:.3f} s (goal < 1 s: "
                     f"{'met' if worst < 1 else 'NOT met'})")
    text = "\n".join(lines)
    (out / "summary.txt").write_text(text + "\n")
    (out / "checkpoint.json").write_text(json.dumps(dict(
        git=a.git, batch=a.batch, every=a.every, median_step_s=median, saves=records,
        resume=dict(iteration=int(resumed[1]), verify_s=float(resumed[2]), load_s=float(resumed[3]))
        if resumed else None, launch_status=a.launch_status), indent=1) + "\n")
    print(text)
    return 0 if all(s == 0 for s in a.launch_status) and records and resumed else 1


if __name__ == "__main__":
    sys.exit(main())
