// Device-side building blocks shared by runtime/ and kernels/cuda: the fp32 view of the
// storage types (f32 and bf16; arithmetic always in fp32) and the grid-stride
// element-wise launcher (a functor op(i) states one element's formula and
// launch_elementwise applies it to [0, n)).
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {

__device__ inline float to_float(float v) { return v; }
__device__ inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ T from_float(float v);
template <> __device__ inline float from_float<float>(float v) { return v; }
template <> __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);  // round to nearest even, as runtime/dtype.hpp's bf16
}

struct ElementwiseLaunch {
  static constexpr int kThreads = 256;
  static constexpr int kMaxBlocks = 4096;  // grid-stride beyond: enough to fill 132 SMs
};

template <typename Op>
__global__ void elementwise_kernel(Op op, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x)
    op(i);
}

template <typename Op>
void launch_elementwise(const Op& op, std::int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  const std::int64_t wanted = (n + ElementwiseLaunch::kThreads - 1) / ElementwiseLaunch::kThreads;
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(wanted, ElementwiseLaunch::kMaxBlocks));
  elementwise_kernel<<<blocks, ElementwiseLaunch::kThreads, 0, stream>>>(op, n);
  RT_CHECK_LAUNCH();
}

}  // namespace ratrain::cuda
