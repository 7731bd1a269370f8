// Host-side checks and dispatch for attention over an explicit key set and the
// log-sum-exp merge (ops.hpp), the compute of sequence-parallel attention: the CPU
// reference (kernels/cpu/attention_keys.cpp) for host f32 / f64 tensors, the CUDA kernels
// (kernels/cuda/attention_keys.cu) for device bf16 / f32 ones, whose lse is f32.
//
// The key positions are checked (>= 0, strictly increasing) on the host on both devices;
// a device key_positions is copied to the host for that, and the copy is handed on to
// the CUDA launcher, which lists the set's global keys from it.
#include <string>

#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"
#include "runtime/index_tensors.hpp"

namespace ratrain::ops {

using detail::dispatch_float;
using detail::require_index_tensor;
using detail::require_rank;
using detail::require_shapes;

namespace {

// The key set's positions: distinct keys in increasing order, so that no key is counted
// twice and merged partial results equal attention over their union.
void require_increasing_positions(const Tensor& key_positions, const char* op) {
  const std::int32_t* positions = key_positions.data<std::int32_t>();
  for (std::int64_t n = 0; n < key_positions.numel(); ++n) {
    RT_REQUIRE(positions[n] >= 0, op, ": key_positions[", n, "] = ", positions[n],
               " is negative");
    RT_REQUIRE(n == 0 || positions[n] > positions[n - 1], op,
               ": key_positions must be strictly increasing (each key once), but entry ", n,
               " is ", positions[n], " after ", positions[n - 1]);
  }
}

// q (B, Tq, H, dh) at positions from q_begin; k, v (B, Tk, H, dh); key_positions (Tk);
// lse (B, H, Tq): the operands forward and backward share. Returns key_positions on the
// host: itself, or for a device tensor its host copy (runtime/index_tensors.hpp: kept
// beside the lists the sequence-parallel code uploads, else copied back, which waits for
// the stream). The check is kept because a key listed twice or out of order would
// silently be counted twice or break the merge (the CUDA launcher reuses the host copy).
Tensor check_attention_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions, const Tensor& lse,
                            const Sparsity& rule, const char* op) {
  const std::string prefix = std::string(op) + ": ";
  require_rank(q, 4, (prefix + "q").c_str());
  require_rank(k, 4, (prefix + "k").c_str());
  require_shapes({q.dim(0), k.dim(1), q.dim(2), q.dim(3)},
                 {{&k, "k (B, Tk, H, dh)"}, {&v, "v (B, Tk, H, dh)"}}, op);
  require_shapes({q.dim(0), q.dim(2), q.dim(1)}, {{&lse, "lse (B, H, Tq)"}}, op);
  require_same_type(q, {&k, &v}, op);
  detail::require_f32_on_gpu(q, lse, "lse", op);
  require_index_tensor(key_positions, k.dim(1), q, (prefix + "key_positions").c_str());
  detail::require_valid_rule(rule, op);
  RT_REQUIRE(q_begin >= 0, op, ": q_begin must be >= 0, got ", q_begin);
  Tensor host_positions = host_values_of(key_positions);
  require_increasing_positions(host_positions, op);
  return host_positions;
}

}  // namespace

void attention_forward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions, const Sparsity& rule,
                            Tensor& out, Tensor& lse) {
  constexpr const char* op = "attention_forward_keys";
  const Tensor host_positions = check_attention_keys(q, q_begin, k, v, key_positions, lse, rule, op);
  require_shapes(q.shape(), {{&out, "out"}}, op);
  require_same_type(q, {&out}, op);
  RT_DISPATCH_CUDA(q, attention_forward_keys, q, q_begin, k, v, key_positions, host_positions,
                   rule, out, lse);
  dispatch_float(q, op, [&](auto t) {
    cpu::attention_forward_keys<decltype(t)>(q, q_begin, k, v, key_positions, rule, out, lse);
  });
}

void attention_backward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                             const Tensor& v, const Tensor& key_positions, const Tensor& out,
                             const Tensor& lse, const Tensor& dout, const Sparsity& rule,
                             Tensor& dq, Tensor& dk, Tensor& dv) {
  constexpr const char* op = "attention_backward_keys";
  const Tensor host_positions = check_attention_keys(q, q_begin, k, v, key_positions, lse, rule, op);
  require_shapes(q.shape(), {{&out, "out"}, {&dout, "dout"}, {&dq, "dq"}}, op);
  require_shapes(k.shape(), {{&dk, "dk"}, {&dv, "dv"}}, op);
  require_same_type(q, {&out, &dout, &dq, &dk, &dv}, op);
  RT_DISPATCH_CUDA(q, attention_backward_keys, q, q_begin, k, v, key_positions, host_positions,
                   out, lse, dout, rule, dq, dk, dv);
  dispatch_float(q, op, [&](auto t) {
    cpu::attention_backward_keys<decltype(t)>(q, q_begin, k, v, key_positions, out, lse, dout,
                                              rule, dq, dk, dv);
  });
}

void attention_merge(Tensor& out, Tensor& lse, const Tensor& part_out, const Tensor& part_lse) {
  constexpr const char* op = "attention_merge";
  require_rank(out, 4, "attention_merge: out");
  require_shapes(out.shape(), {{&part_out, "part_out"}}, op);
  require_shapes({out.dim(0), out.dim(2), out.dim(1)},
                 {{&lse, "lse (B, H, T)"}, {&part_lse, "part_lse (B, H, T)"}}, op);
  require_same_type(out, {&part_out}, op);
  detail::require_f32_on_gpu(out, lse, "lse", op);
  detail::require_f32_on_gpu(out, part_lse, "part_lse", op);
  RT_DISPATCH_CUDA(out, attention_merge, out, lse, part_out, part_lse);
  dispatch_float(out, op,
                 [&](auto t) { cpu::attention_merge<decltype(t)>(out, lse, part_out, part_lse); });
}

}  // namespace ratrain::ops
