// Element-type conversion between device buffers (f32 <-> bf16), so that converting
// Tensor copies on the GPU (publishing fp32 master weights to the bf16 compute copy
// after each optimizer step, loading) never stage through host memory.
#include <cuda_bf16.h>

#include <algorithm>

#include "runtime/cuda_check.hpp"
#include "runtime/device_memory.hpp"

namespace ratrain {
namespace {

struct ConvertLaunch {
  static constexpr int kThreads = 256;
  static constexpr int kMaxBlocks = 4096;  // grid-stride beyond: enough to fill 132 SMs
};

__device__ inline float load_as_float(const float* p, std::int64_t i) { return p[i]; }
__device__ inline float load_as_float(const __nv_bfloat16* p, std::int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ inline void store_float(float* p, std::int64_t i, float v) { p[i] = v; }
__device__ inline void store_float(__nv_bfloat16* p, std::int64_t i, float v) {
  p[i] = __float2bfloat16(v);  // round to nearest even, as runtime/dtype.hpp's bf16
}

template <typename Dst, typename Src>
__global__ void convert_kernel(Dst* dst, const Src* src, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x)
    store_float(dst, i, load_as_float(src, i));
}

template <typename Dst, typename Src>
void launch_convert(void* dst, const void* src, std::int64_t n) {
  const std::int64_t wanted = (n + ConvertLaunch::kThreads - 1) / ConvertLaunch::kThreads;
  const auto blocks = static_cast<unsigned>(std::min<std::int64_t>(wanted, ConvertLaunch::kMaxBlocks));
  // Legacy stream, like copy_bytes: ordered with the kernels of kernels/cuda.
  convert_kernel<<<blocks, ConvertLaunch::kThreads>>>(static_cast<Dst*>(dst),
                                                      static_cast<const Src*>(src), n);
  RT_CHECK_LAUNCH();
}

}  // namespace

bool can_convert_on_device(DType dst, DType src) {
  const auto storage = [](DType t) { return t == DType::f32 || t == DType::bf16; };
  return storage(dst) && storage(src) && dst != src;
}

void convert_on_device(void* dst, DType dst_type, const void* src, DType src_type, std::int64_t n) {
  RT_REQUIRE(can_convert_on_device(dst_type, src_type), "no device conversion from ",
             dtype_name(src_type), " to ", dtype_name(dst_type));
  if (n == 0) return;
  if (dst_type == DType::bf16)
    launch_convert<__nv_bfloat16, float>(dst, src, n);
  else
    launch_convert<float, __nv_bfloat16>(dst, src, n);
}

}  // namespace ratrain
