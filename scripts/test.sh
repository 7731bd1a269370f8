#!/usr/bin/env bash
# README command (b): installs what is missing, builds everything of the CPU preset
# and runs the whole test suite with ctest (extra arguments go to ctest, e.g. -L unit).
# GPU tests report as skipped without a GPU. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
jobs=$(nproc)
cmake --preset cpu
cmake --build --preset cpu -j"$jobs"
ctest --preset cpu -j"$jobs" --timeout 900 "$@"
