#!/usr/bin/env bash
# Multi-GPU scaling of training (issue #4), one GPU per MPI rank, NCCL between them:
#   benchmarks/run_scaling.sh BUILD OUT [--only weak,strong,long,7b] [--gpus N]
# (AXES="dp tp pp sp" by default: the axes the weak and strong parts scale.)
# Every case is one `ratrain bench` (synthetic tokens, bf16, median of timed iterations;
# launch/bench_command.cpp) whose JSON record goes to OUT/scaling.jsonl, its log to
# OUT/<case>.log. The 1-GPU baseline runs in the same call on the same machine.
#   weak:   per-GPU work fixed: dp, tp and pp double the global batch, sp doubles T.
#           efficiency = model FLOP/s on N GPUs / (N x the 1-GPU rate).
#   strong: the 1-GPU shape (B = 2, T = 4096) split over N GPUs per axis;
#           speed-up = 1-GPU step time / N-GPU step time.
#   long:   the longest T that trains (one iteration, dilated D = 64, recompute) with
#           sp = N against sp = 1, over a list of lengths.
#   7b:     configs/7.6b.ini, T = 4096, B = 1, on N GPUs with tp = N (recompute).
# Keep NCCL_NVLS_ENABLE=0 on the lent multi-GPU machines (KINDS.md).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: run_scaling.sh BUILD OUT [--only parts] [--gpus N]}
OUT=${2:?usage: run_scaling.sh BUILD OUT [--only parts] [--gpus N]}
shift 2
ONLY=weak,strong,long,7b
GPUS=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --only) ONLY=$2; shift 2 ;;
    --gpus) GPUS=$2; shift 2 ;;
    *) echo "run_scaling.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 OMP_NUM_THREADS=4
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RATRAIN="$BUILD/launch/ratrain"
CASE_TIMEOUT_S=${CASE_TIMEOUT_S:-240}
AXES=${AXES:-dp tp pp sp}
COMMON=(train.device=cuda train.dtype=bf16 train.schedule=dense train.micro_batch=1)

wanted() { [[ ,$ONLY, == *,$1,* ]]; }

# run NAME RANKS ARGS...: one bench, its record tagged with NAME.
run() {
  local name=$1 ranks=$2
  shift 2
  local launcher=()
  [[ $ranks -gt 1 ]] && launcher=(mpirun -np "$ranks" --bind-to none -x NCCL_NVLS_ENABLE -x OMP_NUM_THREADS)
  echo "== $name ($ranks GPU)" >&2
  if timeout "$CASE_TIMEOUT_S" "${launcher[@]}" "$RATRAIN" bench "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"; then
    python3 - "$name" "$OUT/$name.json" >>"$OUT/scaling.jsonl" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
for line in open(path):
    if line.startswith("{"):
        record = json.loads(line)
        record["shape"], record["case"] = record["case"], name
        print(json.dumps(record))
EOF
  else
    echo "   $name failed (exit $?), last lines:" >&2
    tail -n 4 "$OUT/$name.log" | sed 's/^/   | /' >&2
    echo "{\"case\": \"$name\", \"failed\": true}" >>"$OUT/scaling.jsonl"
  fi
}

C15="$ROOT/configs/1.5b.ini"
if wanted weak || wanted strong; then
  run one_gpu 1 "$C15" "${COMMON[@]}" train.seq_len=4096 train.batch_size=2 train.recompute=false --warmup 2 --steps 5
fi
if wanted weak; then
  for axis in $AXES; do
    # sp keeps the batch and multiplies T; the other axes multiply the batch.
    shape=(train.seq_len=4096 train.batch_size=$((2 * GPUS)))
    [[ $axis == sp ]] && shape=(train.seq_len=$((4096 * GPUS)) train.batch_size=2)
    run weak_$axis$GPUS "$GPUS" "$C15" "${COMMON[@]}" parallel.$axis=$GPUS "${shape[@]}" train.recompute=false --warmup 2 --steps 5
  done
fi
if wanted strong; then
  for axis in $AXES; do
    run strong_$axis$GPUS "$GPUS" "$C15" "${COMMON[@]}" parallel.$axis=$GPUS train.seq_len=4096 train.batch_size=2 train.recompute=false --warmup 2 --steps 5
  done
fi
if wanted long; then
  for T in ${LONG_T:-131072 262144 524288}; do
    run long_sp1_T$T 1 "$C15" train.device=cuda train.dtype=bf16 train.schedule=sparse train.micro_batch=1 train.recompute=true train.seq_len=$T train.batch_size=1 --warmup 0 --steps 1
    run long_sp${GPUS}_T$T "$GPUS" "$C15" train.device=cuda train.dtype=bf16 train.schedule=sparse train.micro_batch=1 train.recompute=true parallel.sp=$GPUS train.seq_len=$T train.batch_size=1 --warmup 0 --steps 1
  done
fi
if wanted 7b; then
  run 7b_tp$GPUS "$GPUS" "$ROOT/configs/7.6b.ini" "${COMMON[@]}" parallel.tp=$GPUS train.seq_len=4096 train.batch_size=1 train.recompute=true --warmup 1 --steps 3
fi

nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader >"$OUT/gpus.txt" 2>&1
python3 "$ROOT/benchmarks/scaling_table.py" "$OUT/scaling.jsonl" --gpus "$GPUS"
