#!/usr/bin/env bash
# README command (b): installs what is missing, builds everything of the CPU preset
# and runs the whole test suite with ctest (extra arguments go to that ctest, e.g.
# -L unit); then, where a CUDA toolkit exists, builds the cuda preset too.
# GPU tests report as skipped without a GPU. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
jobs=$(nproc)
cmake --preset cpu
cmake --build --preset cpu -j"$jobs"
ctest --preset cpu -j"$jobs" --timeout 900 "$@"

# With a CUDA toolkit present (GPU or not), the CUDA backend must also build; its GPU
# tests run when a GPU is visible and are reported as skipped otherwise.
nvcc=$(command -v nvcc || true)
[[ -z $nvcc && -x /usr/local/cuda/bin/nvcc ]] && nvcc=/usr/local/cuda/bin/nvcc
if [[ -n $nvcc ]]; then
  CUDACXX=$nvcc cmake --preset cuda
  cmake --build --preset cuda -j"$jobs"
  ctest --preset cuda -L gpu --timeout 900
else
  echo "test.sh: no nvcc found: the CUDA backend was not built"
fi
