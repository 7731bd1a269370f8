// Host-side checks and dispatch for attention over an explicit key set and the
// log-sum-exp merge (ops.hpp), the compute of sequence-parallel attention.
//
// These ops have a CPU reference only. A device tensor fails first, with a message that
// names the op, before anything reads key_positions on the host.
#include <string>

#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace ratrain::ops {

using detail::dispatch_float;
using detail::require_index_tensor;
using detail::require_rank;
using detail::require_shapes;

namespace {

void require_host(const Tensor& t, const char* op) {
  RT_REQUIRE(t.device() == Device::cpu, op, ": got a ", device_name(t.device()),
             " tensor but this op has no CUDA kernel yet (CPU reference only)");
}

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
// lse (B, H, Tq): the operands forward and backward share.
void check_attention_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                          const Tensor& v, const Tensor& key_positions, const Tensor& lse,
                          const Sparsity& rule, const char* op) {
  require_host(q, op);
  const std::string prefix = std::string(op) + ": ";
  require_rank(q, 4, (prefix + "q").c_str());
  require_rank(k, 4, (prefix + "k").c_str());
  require_shapes({q.dim(0), k.dim(1), q.dim(2), q.dim(3)},
                 {{&k, "k (B, Tk, H, dh)"}, {&v, "v (B, Tk, H, dh)"}}, op);
  require_shapes({q.dim(0), q.dim(2), q.dim(1)}, {{&lse, "lse (B, H, Tq)"}}, op);
  require_same_type(q, {&k, &v, &lse}, op);
  require_index_tensor(key_positions, k.dim(1), q, (prefix + "key_positions").c_str());
  detail::require_valid_rule(rule, op);
  RT_REQUIRE(q_begin >= 0, op, ": q_begin must be >= 0, got ", q_begin);
  require_increasing_positions(key_positions, op);
}

}  // namespace

void attention_forward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions, const Sparsity& rule,
                            Tensor& out, Tensor& lse) {
  constexpr const char* op = "attention_forward_keys";
  check_attention_keys(q, q_begin, k, v, key_positions, lse, rule, op);
  require_shapes(q.shape(), {{&out, "out"}}, op);
  require_same_type(q, {&out}, op);
  dispatch_float(q, op, [&](auto t) {
    cpu::attention_forward_keys<decltype(t)>(q, q_begin, k, v, key_positions, rule, out, lse);
  });
}

void attention_backward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                             const Tensor& v, const Tensor& key_positions, const Tensor& out,
                             const Tensor& lse, const Tensor& dout, const Sparsity& rule,
                             Tensor& dq, Tensor& dk, Tensor& dv) {
  constexpr const char* op = "attention_backward_keys";
  check_attention_keys(q, q_begin, k, v, key_positions, lse, rule, op);
  require_shapes(q.shape(), {{&out, "out"}, {&dout, "dout"}, {&dq, "dq"}}, op);
  require_shapes(k.shape(), {{&dk, "dk"}, {&dv, "dv"}}, op);
  require_same_type(q, {&out, &dout, &dq, &dk, &dv}, op);
  dispatch_float(q, op, [&](auto t) {
    cpu::attention_backward_keys<decltype(t)>(q, q_begin, k, v, key_positions, out, lse, dout,
                                              rule, dq, dk, dv);
  });
}

void attention_merge(Tensor& out, Tensor& lse, const Tensor& part_out, const Tensor& part_lse) {
  constexpr const char* op = "attention_merge";
  require_host(out, op);
  require_rank(out, 4, "attention_merge: out");
  require_shapes(out.shape(), {{&part_out, "part_out"}}, op);
  require_shapes({out.dim(0), out.dim(2), out.dim(1)},
                 {{&lse, "lse (B, H, T)"}, {&part_lse, "part_lse (B, H, T)"}}, op);
  require_same_type(out, {&lse, &part_out, &part_lse}, op);
  dispatch_float(out, op,
                 [&](auto t) { cpu::attention_merge<decltype(t)>(out, lse, part_out, part_lse); });
}

}  // namespace ratrain::ops
