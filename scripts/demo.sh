#!/usr/bin/env bash
# README command (a), the main job: a small real RAT+ training run on the CPU.
#  1. installs what is missing and builds `ratrain`;
#  2. turns WordNet (Debian's wordnet-base) into a corpus, one gloss per line, and
#     tokenizes it to bytes (train/val split 98/2);
#  3. pretrains a 4-layer d = 128 RAT+ jointly (sparse D = 16 step + dense step per
#     batch), validating every 50 iterations, on 4 MPI ranks launched with mpirun as
#     users run it (tensor parallel 2 x sequence parallel 2; RATRAIN_RANKS=1 runs it
#     as one process);
#  4. adapts it briefly to D = 4 and to D = 16 (sparse schedule, small LR);
#  5. evaluates dense and dilated, before and after adaptation, and writes a table
#     (runs/demo/results.md) and a loss-curve plot (runs/demo/loss_curve.png).
# Extra arguments are passed to the pretraining run, e.g. train.iters=100.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

scripts/install_deps.sh
cmake --preset cpu >/dev/null
cmake --build --preset cpu --target ratrain -j"$(nproc)"
ratrain=build/cpu/launch/ratrain
python=/usr/bin/python3   # Debian's interpreter, which has python3-h5py/-matplotlib

if [[ ! -f data/wordnet/train.h5 ]]; then
  $python scripts/wordnet_corpus.py /usr/share/wordnet data/wordnet.txt
  $ratrain tokenize --input data/wordnet.txt --output data/wordnet --val-fraction 0.02
fi

# Open MPI refuses root unless told twice (containers, CI); more ranks than cores needs
# --oversubscribe, and one OpenMP thread per rank keeps them from starving each other.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=${RATRAIN_RANKS:-4}
case $ranks in
  1) launch=() ; layout=() ;;
  4) launch=(mpirun -np 4 --oversubscribe -x OMP_NUM_THREADS=1) ; layout=(parallel.tp=2 parallel.sp=2) ;;
  *) echo "demo.sh: RATRAIN_RANKS must be 1 or 4 (got $ranks)" >&2; exit 2 ;;
esac

rm -rf runs/demo
"${launch[@]}" $ratrain train configs/tiny.ini "${layout[@]}" "$@"

adapt=(train.schedule=sparse model.weights=runs/demo/pretrain/model.h5 train.iters=40
       optim.lr=1e-3 optim.min_lr=1e-4 optim.warmup_frac=0.05 eval.every=0 run.log_every=10)
for D in 4 16; do
  $ratrain train configs/tiny.ini "${adapt[@]}" model.dilation=$D run.dir=runs/demo/adapt_d$D
done

evaluate() {  # weights dilation modes
  $ratrain eval configs/tiny.ini model.weights="$1" model.dilation="$2" eval.modes="$3" \
    eval.batches=32 run.dir=runs/demo/eval
}
evaluate runs/demo/pretrain/model.h5 16 dense,sparse
evaluate runs/demo/pretrain/model.h5 4 sparse
evaluate runs/demo/adapt_d4/model.h5 4 dense,sparse
evaluate runs/demo/adapt_d16/model.h5 16 dense,sparse

$python scripts/demo_report.py runs/demo
echo "demo.sh: finished in $((SECONDS - started)) s; results in runs/demo/ (results.md, loss_curve.png, */metrics.jsonl)"
