#!/usr/bin/env bash
# One device call (single GPU, ~6 minutes) for docs/wip/attention_backward.patch: applies
# it in the device's copy, builds, runs the attention GPU tests under each loop variant
# (split global tiles on) and with splitting off, then `bench_cuda_kernels --parts a,b`
# for each configuration ("s0v0" = main's kernel) and the SDPA baseline of bar (a), all
# in the same call:
#   run: bash docs/wip/device_call_attention.sh      carry: ["build/fixtures"]
set -uo pipefail
export RATRAIN_FIXTURES_DIR=${RATRAIN_FIXTURES_DIR:-$PWD/build/fixtures}
L=${OUT:?set OUT}/logs
mkdir -p "$L"
start=$SECONDS
note() { echo "$1 at $((SECONDS - start)) s" >>"$L/times.txt"; }
patch_file=docs/wip/attention_backward.patch
git apply "$patch_file" 2>/dev/null || patch -p1 -s <"$patch_file" || { echo "patch does not apply"; exit 1; }
cmake --preset cuda >"$L/configure.log" 2>&1 && cmake --build --preset cuda -j"$(nproc)" >"$L/build.log" 2>&1 ||
  { grep -E "error" -A3 "$L/build.log" | head -30; exit 1; }
note "built"
configs="s0v0 s1v0 s1v1 s1v2 s1v3"  # split off/on, loop variant
for c in $configs; do
  RATRAIN_ATTENTION_BWD_SPLIT=${c:1:1} RATRAIN_ATTENTION_BWD_VARIANT=${c:3:1} timeout 120 \
    ctest --preset cuda -L gpu -R "Attention" -j1 >"$L/tests_$c.log" 2>&1
  echo "$c: $(grep -E 'tests passed' "$L/tests_$c.log")" >>"$L/summary.txt"
done
note "tests done"
bench=build/cuda/benchmarks/bench_cuda_kernels
for round in 1 2; do
  for c in $configs; do
    RATRAIN_ATTENTION_BWD_SPLIT=${c:1:1} RATRAIN_ATTENTION_BWD_VARIANT=${c:3:1} timeout 60 \
      $bench --parts a,b --seq 4096,16384 >"$L/ab_$c.r$round.jsonl" 2>/dev/null
  done
done
note "bench done"
PART_TIMEOUT_S=120 timeout 200 benchmarks/run_gpu_benchmarks.sh build/cuda "$L/sdpa" --only a \
  --seq 4096,16384 >"$L/sdpa.txt" 2>&1
note "sdpa done"
tar czf "$OUT/logs.tgz" -C "$OUT" logs
python3 - "$L" <<'PY'
import glob, json, os, sys
rows = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "ab_*.jsonl"))):
    name = os.path.basename(path)[:-6]
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("side") == "ours":
            rows.setdefault(r["case"], {})[name] = r["ms"]
names = sorted({n for v in rows.values() for n in v})
print("case".ljust(34) + "".join(n.rjust(10) for n in names))
for case, by in rows.items():
    print(case.ljust(34) + "".join(("%.3f" % by[n]).rjust(10) if n in by else " " * 10 for n in names))
PY
grep -A4 "^part" "$L/sdpa.txt" | head -6
cat "$L/summary.txt" "$L/times.txt"
