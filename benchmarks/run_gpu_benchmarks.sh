#!/usr/bin/env bash
# GPU benchmarks a-d (benchmarks/README.md): ratrain against its PyTorch baselines, both in
# one run on one machine, then one table of ratios. After
#   cmake --preset cuda && cmake --build --preset cuda
# run (from any directory)
#   benchmarks/run_gpu_benchmarks.sh <build-dir> <out-dir> [--only a,b,c,d] [--seq 4096,32768]
#     --only   parts to run (default all): a dense attention, b dilated attention,
#              c gated recurrence, d training step of the 1.5B model
#     --seq    attention sequence lengths for a and b (default 4096,8192,16384,32768)
# Writes to <out-dir>: <part>.<side>.jsonl (one JSON record per line), <part>.<side>.log
# (stderr), gpu.txt, and summary.txt (the table, also printed). Each step runs under a
# time limit (PART_TIMEOUT_S, default 420 s) so a stuck step cannot use up a device
# session; a failed step is reported and the others still run. About 8 minutes on an
# H100 for everything, most of it torch.compile of the baselines.
set -uo pipefail

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
BUILD=$(cd "$1" && pwd) || usage
OUT=$2
shift 2
ONLY=a,b,c,d
SEQ=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --only) ONLY=${2:?--only needs a value}; shift 2 ;;
    --seq) SEQ=${2:?--seq needs a value}; shift 2 ;;
    *) usage ;;
  esac
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$ROOT" || exit 1  # configs/ and shared/fixtures/ are found from the repository root
TIMEOUT=${PART_TIMEOUT_S:-420}

selected() { [[ ",$ONLY," == *",$1,"* ]]; }
# The selected parts among $1 (e.g. "a,b"), comma-separated; empty if none.
among() { local p r=(); for p in ${1//,/ }; do selected "$p" && r+=("$p"); done; (IFS=,; echo "${r[*]}"); }

# step <name> <command...>: stdout -> <name>.jsonl, stderr -> <name>.log, under the limit;
# its exit status -> <name>.status.jsonl, which the report lists when it is not 0.
step() {
  local name=$1 start=$SECONDS rc
  shift
  echo "== $name: $*" >&2
  timeout "$TIMEOUT" "$@" >"$OUT/$name.jsonl" 2>"$OUT/$name.log"
  rc=$?
  echo "   $name: exit $rc after $((SECONDS - start)) s" >&2
  printf '{"part": "-", "side": "run", "case": "%s", "exit": %d, "seconds": %d}\n' \
    "$name" "$rc" "$((SECONDS - start))" >"$OUT/$name.status.jsonl"
  if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 124 ]] && echo "   $name: stopped at the ${TIMEOUT} s limit (PART_TIMEOUT_S)" >&2
    tail -n 5 "$OUT/$name.log" | sed 's/^/   | /' >&2
  fi
}

# ---- ours_training_step (part d, ratrain side) -------------------------------------------
# `ratrain bench` times training iterations of configs/1.5b.ini at T = 4096, batch 1 (the
# same shape as bench_step.py), in bf16 on the GPU, without recompute (it fits in memory),
# and prints one JSON record per schedule in bench_step.py's schema ("step dense T=4096
# B=1", "step joint T=4096 B=1"). The report takes MFU against the bf16 matmul peak
# measured by bench_step.py in the same run, so both sides share one denominator.
ours_training_step() {
  local schedule
  for schedule in dense joint; do
    "$BUILD/launch/ratrain" bench "$ROOT/configs/1.5b.ini" train.device=cuda train.dtype=bf16 \
      train.seq_len=4096 train.batch_size=1 train.micro_batch=1 train.recompute=false \
      train.schedule=$schedule --warmup 2 --steps 5
  done
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
} >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt" >&2

kernel_parts=$(among a,b,c)
if [[ -n $kernel_parts ]]; then
  step kernels.ours "$BUILD/benchmarks/bench_cuda_kernels" --parts "$kernel_parts" ${SEQ:+--seq "$SEQ"}
fi
# a and b apart: each gets its own time limit (b compiles one FlexAttention graph per (T, D)).
for part in a b; do
  if selected $part; then
    step "attention_$part.torch" python3 "$HERE/torch/bench_attention.py" --parts $part \
      ${SEQ:+--seq "$SEQ"}
  fi
done
if selected c; then
  step scan.torch python3 "$HERE/torch/bench_scan.py"
fi
if selected d; then
  step fixtures.torch python3 "$HERE/torch/check_model_fixtures.py"
  step step.torch python3 "$HERE/torch/bench_step.py" --config configs/1.5b.ini --seq-len 4096 --batch 1
  export -f ours_training_step  # `timeout` runs programs, so the hook runs in a child bash
  export BUILD ROOT
  step step.ours bash -c ours_training_step
fi

python3 "$HERE/report_table.py" "$OUT" | tee "$OUT/summary.txt"
