#!/usr/bin/env bash
# Builds the cuda preset and runs every GPU test (ctest label gpu) on this machine's GPU,
# for machines where scripts/test.sh's package installation is not possible (a lent
# GPU node without network). Logs go to $1 (default build/cuda/gpu-check); the ctest
# summary is printed last. Extra arguments go to ctest (e.g. -R Attention).
# The golden fixtures are found as for every build: ../shared/fixtures/ratplus beside
# the checkout, or $RATRAIN_FIXTURES_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=${1:-build/cuda/gpu-check}
shift || true
mkdir -p "$logs"
jobs=$(nproc)
cmake --preset cuda >"$logs/configure.log" 2>&1 || { tail -30 "$logs/configure.log"; exit 1; }
cmake --build --preset cuda -j"$jobs" >"$logs/build.log" 2>&1 || { grep -E "error|Error" -A5 "$logs/build.log" | head -60; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$logs/gpu.txt"
ctest --preset cuda -L gpu --timeout 180 -j1 "$@" >"$logs/ctest.log" 2>&1 || true
grep -E "\*\*\*Failed|\*\*\*Exception|Timeout|Not Run" "$logs/ctest.log" | head -40 || true
sed -n '/tests passed/,$p' "$logs/ctest.log" | head -20
# The summary line once more, last: callers that keep only the tail still see it (the
# skipped-test list above can be longer than their tail).
grep -E "tests passed" "$logs/ctest.log" || echo "gpu_check: no ctest summary; see $logs/ctest.log"
