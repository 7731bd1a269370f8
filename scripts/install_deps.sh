#!/usr/bin/env bash
# Installs what ratrain needs on Debian 12 / Ubuntu 24.04, skipping what is present.
# Used by both README commands (demo.sh and test.sh) and by CI on a clean machine.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config   # compiler and build (Ninja: cuda preset)
  libhdf5-dev hdf5-tools               # HDF5 (C API; h5dump for users)
  libopenmpi-dev openmpi-bin           # MPI (multi-rank runs, tests/mpi)
  libboost-dev                         # header-only Boost: PropertyTree (INI, JSON)
  libgtest-dev libbenchmark-dev        # GoogleTest, Google Benchmark
  libopenblas-dev                      # CBLAS for the CPU GEMMs
  libsentencepiece-dev sentencepiece   # SentencePiece tokenizers (LLaMA-2 vocabularies)
  wordnet-base                         # the demo corpus (English glosses)
  python3 python3-h5py python3-matplotlib   # report, plots, fixture tooling
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install_deps.sh: all ${#packages[@]} packages present"
  exit 0
fi

echo "install_deps.sh: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install_deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
