// Element-type conversion between device buffers (f32 <-> bf16), so that converting
// Tensor copies on the GPU (publishing fp32 master weights to the bf16 compute copy
// after each optimizer step, loading) never stage through host memory.
#include "runtime/cuda_elementwise.cuh"
#include "runtime/device_memory.hpp"

namespace ratrain {
namespace {

template <typename Dst, typename Src>
struct ConvertOp {
  Dst* dst;
  const Src* src;
  __device__ void operator()(std::int64_t i) const {
    dst[i] = cuda::from_float<Dst>(cuda::to_float(src[i]));  // nearest even, as the host's bf16
  }
};

template <typename Dst, typename Src>
void launch_convert(void* dst, const void* src, std::int64_t n) {
  // Legacy stream, like copy_bytes: ordered with the kernels of kernels/cuda.
  cuda::launch_elementwise(ConvertOp<Dst, Src>{static_cast<Dst*>(dst), static_cast<const Src*>(src)},
                           n, nullptr);
}

}  // namespace

bool can_convert_on_device(DType dst, DType src) {
  const auto storage = [](DType t) { return t == DType::f32 || t == DType::bf16; };
  return storage(dst) && storage(src) && dst != src;
}

void convert_on_device(void* dst, DType dst_type, const void* src, DType src_type, std::int64_t n) {
  RT_REQUIRE(can_convert_on_device(dst_type, src_type), "no device conversion from ",
             dtype_name(src_type), " to ", dtype_name(dst_type));
  if (dst_type == DType::bf16)
    launch_convert<__nv_bfloat16, float>(dst, src, n);
  else
    launch_convert<float, __nv_bfloat16>(dst, src, n);
}

}  // namespace ratrain
