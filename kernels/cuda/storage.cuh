// The host-side switch from a Tensor's dtype to the CUDA backend's storage type (f32 or
// bf16; their device conversions are in runtime/cuda_elementwise.cuh) and typed pointers.
#pragma once

#include <cuda_bf16.h>

#include "runtime/cuda_elementwise.cuh"
#include "runtime/error.hpp"
#include "runtime/tensor.hpp"

namespace ratrain::cuda {

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
