#!/usr/bin/env bash
# One device call (single GPU, ~9 minutes) that verifies and measures the work in progress
# of docs/wip/README.md on the device's copy of the tree (the local checkout is untouched):
#   run: bash docs/wip/device_call.sh      carry: ["build/fixtures"]
# (build/fixtures: a copy of ../shared/fixtures/ratplus). Logs go to $OUT/logs.tgz; a short
# summary is printed last. Stages, each under its own time limit:
#   0. applies docs/wip/step_fusions.patch;
#   1. scripts/gpu_check.sh: the full GPU suite with it (the step fusions' tests);
#   2. the 1.5B step, dense with --gaps (per-kernel times) and joint, T = 4096, B = 1;
#   3. the compiled PyTorch step (part d's baseline) in the same call;
#   4. the gated scan at B = 1: committed kernel, then docs/wip/scan_resident_prefetch.patch
#      applied, its tests and RATRAIN_SCAN_VARIANT 0/1/2 (bar c), if time is left.
set -uo pipefail
export RATRAIN_FIXTURES_DIR=${RATRAIN_FIXTURES_DIR:-$PWD/build/fixtures}
L=${OUT:?set OUT}/logs
mkdir -p "$L"
start=$SECONDS
elapsed() { echo $((SECONDS - start)); }
# Seconds the whole call may take (DEVICE_CALL_BUDGET_S; ~540 runs every stage): the torch
# step and the scan stages run only while enough of it is left.
budget=${DEVICE_CALL_BUDGET_S:-540}
note() { echo "$1 at $(elapsed) s" >>"$L/times.txt"; }
# The device's copy may have no .git: patch(1) then, after a dry run (a patch that does not
# apply must leave the tree as it was).
apply() {
  [ -f "$1" ] || return 1
  if [ -d .git ]; then git apply "$1"; else patch -p1 -s --dry-run <"$1" >/dev/null && patch -p1 -s <"$1"; fi
}

apply docs/wip/step_fusions.patch || { echo "step_fusions.patch does not apply"; exit 1; }

scripts/gpu_check.sh "$L/gpu" >"$L/gpu_check.txt" 2>&1
note "gpu_check done"

ratrain=build/cuda/launch/ratrain
step_args=(configs/1.5b.ini train.device=cuda train.dtype=bf16 train.seq_len=4096 train.batch_size=1
           train.micro_batch=1 train.recompute=false --warmup 2 --steps 5)
timeout 60 $ratrain bench "${step_args[@]}" train.schedule=dense --gaps >"$L/ours_dense.jsonl" 2>"$L/ours_dense.log"
timeout 60 $ratrain bench "${step_args[@]}" train.schedule=joint >"$L/ours_joint.jsonl" 2>"$L/ours_joint.log"
note "ours done"
left=$((budget - 140 - $(elapsed)))  # timeout 0 would mean no limit, a negative one an error
if ((left > 30)); then
  timeout $left python3 benchmarks/torch/bench_step.py --config configs/1.5b.ini \
    --seq-len 4096 --batch 1 >"$L/torch_step.jsonl" 2>"$L/torch_step.log"
  note "torch rc $?"
fi

bench=build/cuda/benchmarks/bench_cuda_kernels
if (($(elapsed) < budget - 110)); then
  timeout 30 $bench --parts c --scan-iters 50 >"$L/scan_committed.jsonl" 2>/dev/null
  if apply docs/wip/scan_resident_prefetch.patch && cmake --build build/cuda -j"$(nproc)" >"$L/scan_build.log" 2>&1; then
    timeout 60 build/cuda/tests/test_gated_scan_cuda >"$L/scan_test.txt" 2>&1
    note "scan test rc $?"
    if [ -x build/cuda/tests/test_gated_scan_rope_cuda ]; then
      timeout 60 build/cuda/tests/test_gated_scan_rope_cuda >"$L/scan_rope_test.txt" 2>&1
      note "scan rope test rc $?"
    fi
    for v in 0 1 2; do
      RATRAIN_SCAN_VARIANT=$v timeout 20 $bench --parts c --scan-iters 50 >"$L/scan_v$v.jsonl" 2>/dev/null
    done
  fi
  note "scan done"
fi

tar czf "$OUT/logs.tgz" -C "$OUT" logs
grep -E "Failed|Exception|Timeout" "$L/gpu/ctest.log" | head -20
grep -hE "median|GPU busy" "$L/ours_dense.log" "$L/ours_joint.log" | cut -c1-230
sed -n '/by kernel/,$p' "$L/ours_dense.log" | head -22 | cut -c12-150
grep -h '"step' "$L/torch_step.jsonl" | cut -c1-300
python3 - "$L" <<'PY'
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "scan_*.jsonl"))):
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        print(os.path.basename(path)[:-6], r.get("case"), round(r.get("ms", 0), 4), r.get("GBps"),
              "rope fused/separate", r.get("rope_fused_ms"), r.get("rope_separate_ms"))
PY
grep -hE "PASSED|FAILED" "$L/scan_test.txt" "$L/scan_rope_test.txt" 2>/dev/null | head -6
cat "$L/times.txt"
tail -1 "$L/gpu_check.txt"
