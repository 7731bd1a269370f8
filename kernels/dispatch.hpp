// Host-side backend and dtype dispatch shared by the ops_*.cpp files (internal to
// kernels/; not part of the op API).
//
// Every op checks shapes and dtypes first, then calls dispatch_float on one of its
// float operands (require_same_type has already made the others match), which picks
// the backend from the device and the template instantiation from the dtype.
// Invariant: nothing reaches kernels/cpu unless it is a host f32 or f64 tensor.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "kernels/visibility.hpp"
#include "runtime/tensor.hpp"

#if RATRAIN_HAVE_CUDA
#include "kernels/cuda/cuda_ops.hpp"
// For a device tensor `t`, returns the CUDA launcher's `launcher(args..., stream)` from
// the op. The one place where the build's backends differ: without the CUDA
// backend a device tensor falls through to dispatch_float, which reports it.
#define RT_DISPATCH_CUDA(t, launcher, ...)                                            \
  do {                                                                                \
    if ((t).device() == ::ratrain::Device::cuda) {                                    \
      return ::ratrain::cuda::launcher(__VA_ARGS__, ::ratrain::cuda::compute_stream()); \
    }                                                                                 \
  } while (0)
namespace ratrain::ops::detail {
inline constexpr bool kHaveCuda = true;
}
#else
namespace ratrain::ops::detail {
inline constexpr bool kHaveCuda = false;
}
#define RT_DISPATCH_CUDA(t, launcher, ...) \
  do {                                     \
  } while (0)
#endif

namespace ratrain::ops::detail {

// Calls fn(float{}) or fn(double{}) for a host f32/f64 tensor; fails naming `op`
// otherwise (a CUDA tensor of an op without CUDA kernel or in a CUDA-less build, or
// bf16 on the CPU backend).
template <typename Fn>
decltype(auto) dispatch_float(const Tensor& t, const char* op, Fn&& fn) {
  if (t.device() != Device::cpu)
    RT_FAIL(op, ": got a ", device_name(t.device()), " tensor but ",
            kHaveCuda ? "this op has no CUDA kernel yet" : "ratrain was built without the CUDA backend");
  switch (t.dtype()) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::bf16:
    case DType::i32: break;
  }
  RT_FAIL(op, ": the CPU backend supports f32 and f64, got ", dtype_name(t.dtype()));
}

// Requires an i32 index tensor (token ids, labels) of shape (n) on `like`'s device.
inline void require_index_tensor(const Tensor& t, std::int64_t n, const Tensor& like,
                                 const char* what) {
  require_shape(t, {n}, what);
  RT_REQUIRE(t.dtype() == DType::i32, what, " must be i32, got ", dtype_name(t.dtype()));
  RT_REQUIRE(t.device() == like.device(), what, " is on ", device_name(t.device()),
             " but the other operands are on ", device_name(like.device()));
}

// Requires `t` to be of rank `rank`, naming `what`.
inline void require_rank(const Tensor& t, int rank, const char* what) {
  RT_REQUIRE(t.rank() == rank, what, " must have rank ", rank, ", got shape ",
             shape_str(t.shape()));
}

// Requires every named tensor to have `shape`; errors read "<op>: <name> has shape ...".
struct Named {
  const Tensor* tensor;
  const char* name;
};
inline void require_shapes(const Shape& shape, std::initializer_list<Named> tensors,
                           const char* op) {
  for (const Named& n : tensors)
    if (n.tensor->shape() != shape)
      require_shape(*n.tensor, shape, (std::string(op) + ": " + n.name).c_str());
}

// The GPU keeps statistics (RMSNorm's rstd, attention's lse, the recurrence gate) in
// f32 and accumulates parameter gradients in f32 whatever the storage type (DESIGN.md
// "Numerics"); the CPU reference computes everything in the operands' own type.
// Requires `t` to have that type and x's device.
inline void require_f32_on_gpu(const Tensor& x, const Tensor& t, const char* what,
                               const char* op) {
  const DType expected = x.device() == Device::cuda ? DType::f32 : x.dtype();
  RT_REQUIRE(t.device() == x.device() && t.dtype() == expected, op, ": ", what, " must be ",
             dtype_name(expected), " on ", device_name(x.device()), ", got ",
             dtype_name(t.dtype()), " on ", device_name(t.device()));
}

// True when `a` and `b` are the same elements (in place) or share none.
inline bool same_or_disjoint(const Tensor& a, const Tensor& b) {
  const auto a0 = reinterpret_cast<std::uintptr_t>(a.raw());
  const auto b0 = reinterpret_cast<std::uintptr_t>(b.raw());
  return a0 == b0 || a0 + a.nbytes() <= b0 || b0 + b.nbytes() <= a0;
}

// A visibility rule the attention ops accept, named `op` in the error.
inline void require_valid_rule(const Sparsity& rule, const char* op) {
  RT_REQUIRE(rule.dilation == -1 || rule.dilation >= 1, op,
             ": dilation must be 1 (dense), > 1 (dilated) or -1 (local only), got ",
             rule.dilation);
  RT_REQUIRE(rule.window >= 0 && rule.initial >= 0, op,
             ": window and initial must be >= 0, got W = ", rule.window, ", P = ", rule.initial);
}

}  // namespace ratrain::ops::detail
