// Storage types of the CUDA backend (f32 and bf16; arithmetic always in fp32) and the
// host-side switch from a Tensor's dtype to the kernel's template argument.
#pragma once

#include <cuda_bf16.h>

#include "runtime/error.hpp"
#include "runtime/tensor.hpp"

namespace ratrain::cuda {

__device__ inline float to_float(float v) { return v; }
__device__ inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ T from_float(float v);
template <> __device__ inline float from_float<float>(float v) { return v; }
template <> __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);  // round to nearest even, as runtime/dtype.hpp's bf16
}

// Calls fn(T{}) with T the CUDA storage type of `t` (float or __nv_bfloat16).
template <typename Fn>
void dispatch_storage(const Tensor& t, const char* op, Fn&& fn) {
  switch (t.dtype()) {
    case DType::f32: return fn(float{});
    case DType::bf16: return fn(__nv_bfloat16{});
    default: RT_FAIL(op, ": the CUDA backend stores f32 or bf16, got ", dtype_name(t.dtype()));
  }
}

template <typename T>
const T* cptr(const Tensor& t) { return static_cast<const T*>(t.raw()); }
template <typename T>
T* ptr(const Tensor& t) { return static_cast<T*>(t.raw()); }

}  // namespace ratrain::cuda
