// The CUDA checker (STYLE.md item 1), for files compiled in a CUDA build:
//   RT_CHECK_CUDA(call)   any CUDA runtime API call
//   RT_CHECK_LAUNCH()     after every kernel launch (launch-configuration errors)
// Failures go through the one reporter of runtime/error.hpp, naming the statement,
// file:line, rank and host, with CUDA's error name and string.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "runtime/error.hpp"

namespace ratrain::detail {
inline bool cuda_ok(cudaError_t status) { return status == cudaSuccess; }
inline std::string cuda_describe(cudaError_t status) {
  return concat(cudaGetErrorName(status), ": ", cudaGetErrorString(status));
}
}  // namespace ratrain::detail

#define RT_CHECK_CUDA(call) \
  RT_CHECK_WITH("CUDA call failed", call, ::ratrain::detail::cuda_ok, ::ratrain::detail::cuda_describe)
#define RT_CHECK_LAUNCH() RT_CHECK_CUDA(cudaGetLastError())
