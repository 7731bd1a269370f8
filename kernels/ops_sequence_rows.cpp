// Host-side checks and dispatch for the sequence row copies of sequence parallelism
// (ops::copy_sequence_rows). Shapes, dtypes, devices and storage overlap are checked here
// for both backends; the index values only on the CPU (kernels/cpu/sequence_rows.cpp),
// see ops.hpp.
#include <cstdint>
#include <string>

#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace ratrain::ops {

using detail::dispatch_float;
using detail::require_index_tensor;
using detail::require_rank;

namespace {

// True when the storage of `a` and `b` shares at least one byte.
bool overlap(const Tensor& a, const Tensor& b) {
  const auto a0 = reinterpret_cast<std::uintptr_t>(a.raw());
  const auto b0 = reinterpret_cast<std::uintptr_t>(b.raw());
  return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

}  // namespace

void copy_sequence_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                        const Tensor& dst_rows, Combine how) {
  constexpr const char* op = "copy_sequence_rows";
  const std::string prefix = std::string(op) + ": ";
  require_rank(src, 4, (prefix + "src (B, Ts, H, dh)").c_str());
  require_rank(dst, 4, (prefix + "dst (B, Td, H, dh)").c_str());
  RT_REQUIRE(dst.dim(0) == src.dim(0) && dst.dim(2) == src.dim(2) && dst.dim(3) == src.dim(3),
             op, ": dst has shape ", shape_str(dst.shape()), " but src ", shape_str(src.shape()),
             "; they must share B, H and dh");
  require_same_type(src, {&dst}, op);
  require_rank(src_rows, 1, (prefix + "src_rows (N)").c_str());
  require_index_tensor(src_rows, src_rows.dim(0), src, (prefix + "src_rows").c_str());
  require_index_tensor(dst_rows, src_rows.dim(0), src, (prefix + "dst_rows").c_str());
  RT_REQUIRE(!overlap(src, dst), op, ": src and dst share storage; they must be disjoint");
  RT_DISPATCH_CUDA(src, copy_sequence_rows, src, src_rows, dst, dst_rows, how);
  dispatch_float(src, op, [&](auto t) {
    cpu::copy_sequence_rows<decltype(t)>(src, src_rows, dst, dst_rows, how);
  });
}

}  // namespace ratrain::ops
