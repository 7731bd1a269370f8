#!/usr/bin/env bash
# Checkpoint cost of a GPU training run (issue #5: "time training is blocked per save
# with async on (goal < 1 s), and the write bandwidth"):
#   benchmarks/run_checkpoint_benchmark.sh BUILD OUT [--config configs/1.5b.ini]
#       [--batch 2] [--every 60] [--iters 120] [--dir /tmp/ratrain_checkpoint_bench]
# Launch 1 trains the model (bf16, dense, T = 4096, synthetic uniform tokens from a flat
# .bin file) for ITERS iterations with checkpoint.every = EVERY, so it saves the full
# training state (f32 master values and both AdamW moments) ITERS / EVERY times.
# Launch 2 resumes from `latest` on the GPU (verification and load timed by its log) and
# trains 5 more iterations. benchmarks/checkpoint_report.py then reads both logs and
# launch 1's metrics.jsonl and prints, per save: the time the training thread was blocked
# in save(), the extra time of the next iterations (the optimizer update waits on the
# device for the copy of the state to finish), and the background write (bytes, CRC-32,
# write + fsync bandwidth). OUT gets train.log, resume.log, metrics.jsonl, df.txt,
# checkpoint.json and summary.txt; the checkpoints themselves go to --dir (tens of GiB:
# not OUT, which the device tool copies back) and are deleted at the end.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
usage() { echo "usage: run_checkpoint_benchmark.sh BUILD OUT [--config F] [--batch N] [--every N] [--iters N] [--dir D]" >&2; exit 2; }
BUILD=${1:-}; OUT=${2:-}
[[ -n $BUILD && -n $OUT ]] || usage
shift 2
CONFIG=$ROOT/configs/1.5b.ini BATCH=2 EVERY=60 ITERS=120 DIR=/tmp/ratrain_checkpoint_bench
while [[ $# -gt 0 ]]; do
  case $1 in
    --config) CONFIG=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --every) EVERY=$2; shift 2 ;;
    --iters) ITERS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) usage ;;
  esac
done
RATRAIN=$BUILD/launch/ratrain
[[ -x $RATRAIN ]] || { echo "run_checkpoint_benchmark.sh: no $RATRAIN (build first)" >&2; exit 2; }
mkdir -p "$OUT" "$DIR" && OUT=$(cd "$OUT" && pwd)
trap 'rm -rf "$DIR"' EXIT
df -h "$DIR" | tee "$OUT/df.txt" >&2

# Synthetic tokens: enough samples of T + 1 for every batch of both launches.
# (DEVICE=cpu DTYPE=f32 SEQ=256 with --config configs/tiny.ini: a smoke run of this script.)
SEQ=${SEQ:-4096} DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-bf16}
python3 - "$DIR/tokens.bin" $(( (ITERS + 10) * BATCH * (SEQ + 1) )) <<'PY' || exit 1
import array, random, sys
rng = random.Random(0)
array.array("H", (rng.randrange(3, 32000) for _ in range(int(sys.argv[2])))).tofile(open(sys.argv[1], "wb"))
PY

COMMON=("$CONFIG" train.device=$DEVICE train.dtype=$DTYPE train.schedule=dense
        train.seq_len=$SEQ train.batch_size=$BATCH train.micro_batch=1 train.recompute=false
        train.iters=$((ITERS + 5)) data.train=$DIR/tokens.bin data.bin_vocab_size=32000 data.val= eval.every=0
        checkpoint.dir=$DIR/checkpoints checkpoint.keep=1 run.dir=$DIR/run run.log_every=10)
echo "== launch 1: $ITERS iterations, a checkpoint every $EVERY" >&2
"$RATRAIN" train "${COMMON[@]}" train.stop_at=$ITERS checkpoint.every=$EVERY \
  checkpoint.resume=none >"$OUT/train.log" 2>&1
rc1=$?
cp "$DIR/run/metrics.jsonl" "$OUT/metrics.jsonl" 2>/dev/null
du -sh "$DIR/checkpoints"/step_* >>"$OUT/df.txt" 2>&1
echo "== launch 2: resume from latest, 5 iterations" >&2
"$RATRAIN" train "${COMMON[@]}" checkpoint.every=0 checkpoint.resume=auto >"$OUT/resume.log" 2>&1
rc2=$?
python3 "$ROOT/benchmarks/checkpoint_report.py" "$OUT" --launch-status $rc1 $rc2 \
  --batch "$BATCH" --every "$EVERY" --git "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
