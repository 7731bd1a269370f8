# Finds ratrain's third-party dependencies. Required: HDF5 (C), Boost headers, MPI.
# Optional, each with a fallback: CUDA, CBLAS (naive GEMM otherwise), SentencePiece
# (the tokenizer then reports that it was built without it), OpenMP.

find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost 1.74 REQUIRED)           # header-only: PropertyTree, JSON parser
find_package(OpenMP COMPONENTS CXX)
find_package(Threads REQUIRED)
# MPI carries the host-side collectives of multi-rank groups, the rank layout's
# communicators and the local rank (parallel/), and runs the tests/mpi suites through
# mpiexec; scripts/install_deps.sh installs Open MPI (libopenmpi-dev, openmpi-bin).
# ratrain calls the C API only: skipping the deprecated C++ bindings (mpicxx.h) keeps
# them out of every translation unit that includes mpi.h.
set(MPI_CXX_SKIP_MPICXX ON)
find_package(MPI REQUIRED COMPONENTS CXX)

# --- CUDA -------------------------------------------------------------------
set(RATRAIN_HAVE_CUDA OFF)
if(NOT RATRAIN_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(RATRAIN_HAVE_CUDA ON)
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    # CMake before 3.26 does not know the C++20 flag of recent nvcc (13.x knows -std=c++20).
    if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a)      # Hopper (H100/H200)
    endif()
  elseif(RATRAIN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RATRAIN_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

# --- NCCL (with CUDA): the collectives of device tensors across ranks ----------
# Beside the CUDA toolkit (this machine's /usr/local/cuda) or in the system paths (the
# libnccl-dev package). Without it a CUDA build trains on one GPU per job only.
set(RATRAIN_HAVE_NCCL OFF)
if(RATRAIN_HAVE_CUDA)
  find_path(RATRAIN_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(RATRAIN_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(RATRAIN_NCCL_INCLUDE AND RATRAIN_NCCL_LIBRARY)
    set(RATRAIN_HAVE_NCCL ON)
  endif()
endif()

# --- CUPTI (with CUDA): device timestamps of kernels for `ratrain bench --gaps` ------
# Part of the CUDA toolkit (libcupti, cupti.h); optional: without it bench says so.
set(RATRAIN_HAVE_CUPTI OFF)
if(RATRAIN_HAVE_CUDA AND TARGET CUDA::cupti)
  find_path(RATRAIN_CUPTI_INCLUDE cupti.h
            HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/extras/CUPTI/include)
  if(RATRAIN_CUPTI_INCLUDE)
    set(RATRAIN_HAVE_CUPTI ON)
  endif()
endif()

# --- CBLAS ------------------------------------------------------------------
set(RATRAIN_HAVE_CBLAS OFF)
find_path(RATRAIN_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas)
find_library(RATRAIN_CBLAS_LIBRARY NAMES openblas cblas blas)
if(RATRAIN_CBLAS_INCLUDE AND RATRAIN_CBLAS_LIBRARY)
  set(RATRAIN_HAVE_CBLAS ON)
endif()

# --- SentencePiece ----------------------------------------------------------
set(RATRAIN_HAVE_SENTENCEPIECE OFF)
find_path(RATRAIN_SPM_INCLUDE sentencepiece_processor.h)
find_library(RATRAIN_SPM_LIBRARY NAMES sentencepiece)
if(RATRAIN_SPM_INCLUDE AND RATRAIN_SPM_LIBRARY)
  set(RATRAIN_HAVE_SENTENCEPIECE ON)
endif()

# --- Test and benchmark frameworks --------------------------------------------
if(RATRAIN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(RATRAIN_BUILD_BENCHMARKS)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    message(STATUS "Google Benchmark not found: benchmarks are not built")
    set(RATRAIN_BUILD_BENCHMARKS OFF)
  endif()
endif()
