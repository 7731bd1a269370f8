// Host-side checks and dispatch for the sequence ops of ops.hpp: the gated recurrence and
// its carry across chunks of T, RoPE and attention under a visibility rule.
#include <string>

#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace ratrain::ops {

using detail::dispatch_float;
using detail::require_f32_on_gpu;
using detail::require_rank;
using detail::require_shapes;

void gated_scan_forward(const Tensor& g, const Tensor& k, const Tensor& v, Tensor& gate,
                        Tensor& K, Tensor& V) {
  require_rank(g, 3, "gated_scan_forward: g");
  require_shapes(g.shape(), {{&k, "k"}, {&v, "v"}, {&gate, "gate"}, {&K, "K"}, {&V, "V"}},
                 "gated_scan_forward");
  require_same_type(g, {&k, &v, &K, &V}, "gated_scan_forward");
  require_f32_on_gpu(g, gate, "gate", "gated_scan_forward");
  RT_DISPATCH_CUDA(g, gated_scan_forward, g, k, v, gate, K, V);
  dispatch_float(g, "gated_scan_forward",
                 [&](auto t) { cpu::gated_scan_forward<decltype(t)>(g, k, v, gate, K, V); });
}

void gated_scan_backward(const Tensor& gate, const Tensor& k, const Tensor& v, const Tensor& K,
                         const Tensor& V, const Tensor& dK, const Tensor& dV, Tensor& dg,
                         Tensor& dk, Tensor& dv) {
  require_rank(gate, 3, "gated_scan_backward: gate");
  require_shapes(gate.shape(),
                 {{&k, "k"}, {&v, "v"}, {&K, "K"}, {&V, "V"}, {&dK, "dK"}, {&dV, "dV"},
                  {&dg, "dg"}, {&dk, "dk"}, {&dv, "dv"}},
                 "gated_scan_backward");
  require_same_type(k, {&v, &K, &V, &dK, &dV, &dg, &dk, &dv}, "gated_scan_backward");
  require_f32_on_gpu(k, gate, "gate", "gated_scan_backward");
  RT_DISPATCH_CUDA(k, gated_scan_backward, gate, k, v, K, V, dK, dV, dg, dk, dv);
  dispatch_float(k, "gated_scan_backward", [&](auto t) {
    cpu::gated_scan_backward<decltype(t)>(gate, k, v, K, V, dK, dV, dg, dk, dv);
  });
}

namespace {
// The chunk operands of the carry ops: `like` (B, Tc, C), named `name`, in the storage type
// and the gate of its shape, f32 on the GPU. The callers check the other storage operands
// against `like`.
void check_chunk(const Tensor& like, const char* name, const Tensor& gate, const char* op) {
  require_rank(like, 3, (std::string(op) + ": " + name).c_str());
  require_shapes(like.shape(), {{&gate, "gate"}}, op);
  require_f32_on_gpu(like, gate, "gate", op);
}

// A summary or carried state (fields, B, C) of the chunk `like`, in the state type (f32 on
// the GPU, like the gate).
void check_fields(const Tensor& like, const Tensor& t, std::int64_t fields, const char* what,
                  const char* op) {
  require_shapes({fields, like.dim(0), like.dim(2)}, {{&t, what}}, op);
  require_f32_on_gpu(like, t, what, op);
}

void check_summary_rows(const Tensor& like, const char* op) {
  RT_REQUIRE(like.dim(1) >= 1, op, ": a chunk to summarise needs at least one row, got shape ",
             shape_str(like.shape()));
}
}  // namespace

void gated_scan_state_summary(const Tensor& gate, const Tensor& K, const Tensor& V,
                              Tensor& summary) {
  constexpr const char* op = "gated_scan_state_summary";
  check_chunk(K, "K", gate, op);
  check_summary_rows(K, op);
  require_shapes(K.shape(), {{&V, "V"}}, op);
  require_same_type(K, {&V}, op);
  check_fields(K, summary, kStateSummaryFields, "summary", op);
  RT_DISPATCH_CUDA(K, gated_scan_state_summary, gate, K, V, summary);
  dispatch_float(K, op, [&](auto t) {
    cpu::gated_scan_state_summary<decltype(t)>(gate, K, V, summary);
  });
}

void gated_scan_adjoint_summary(const Tensor& gate, const Tensor& dK, const Tensor& dV,
                                const Tensor& K, const Tensor& V, Tensor& summary) {
  constexpr const char* op = "gated_scan_adjoint_summary";
  check_chunk(K, "K", gate, op);
  check_summary_rows(K, op);
  require_shapes(K.shape(), {{&V, "V"}, {&dK, "dK"}, {&dV, "dV"}}, op);
  require_same_type(K, {&V, &dK, &dV}, op);
  check_fields(K, summary, kAdjointSummaryFields, "summary", op);
  RT_DISPATCH_CUDA(K, gated_scan_adjoint_summary, gate, dK, dV, K, V, summary);
  dispatch_float(K, op, [&](auto t) {
    cpu::gated_scan_adjoint_summary<decltype(t)>(gate, dK, dV, K, V, summary);
  });
}

void gated_scan_fold(const Tensor& summaries, FoldOrder order, Tensor& state) {
  constexpr const char* op = "gated_scan_fold";
  require_rank(summaries, 4, "gated_scan_fold: summaries (n, F, B, C)");
  RT_REQUIRE(summaries.dim(1) >= 3, op,
             ": a summary needs the fields P, X_K, X_V, got shape ", shape_str(summaries.shape()));
  require_f32_on_gpu(summaries, summaries, "summaries", op);
  require_shapes({2, summaries.dim(2), summaries.dim(3)}, {{&state, "state"}}, op);
  require_f32_on_gpu(summaries, state, "state", op);
  RT_DISPATCH_CUDA(summaries, gated_scan_fold, summaries, order, state);
  dispatch_float(summaries, op,
                 [&](auto t) { cpu::gated_scan_fold<decltype(t)>(summaries, order, state); });
}

void gated_scan_apply_carry(const Tensor& gate, const Tensor& state_in, Tensor& K, Tensor& V) {
  constexpr const char* op = "gated_scan_apply_carry";
  check_chunk(K, "K", gate, op);
  require_shapes(K.shape(), {{&V, "V"}}, op);
  require_same_type(K, {&V}, op);
  check_fields(K, state_in, 2, "state_in", op);
  RT_DISPATCH_CUDA(K, gated_scan_apply_carry, gate, state_in, K, V);
  dispatch_float(K, op,
                 [&](auto t) { cpu::gated_scan_apply_carry<decltype(t)>(gate, state_in, K, V); });
}

void gated_scan_carry_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                               const Tensor& K, const Tensor& V, const Tensor& state_in,
                               const Tensor& adjoint_in, Tensor& dg, Tensor& dk, Tensor& dv) {
  constexpr const char* op = "gated_scan_carry_backward";
  check_chunk(k, "k", gate, op);
  require_shapes(k.shape(),
                 {{&v, "v"}, {&K, "K"}, {&V, "V"}, {&dg, "dg"}, {&dk, "dk"}, {&dv, "dv"}}, op);
  require_same_type(k, {&v, &K, &V, &dg, &dk, &dv}, op);
  check_fields(k, state_in, 2, "state_in", op);
  check_fields(k, adjoint_in, 2, "adjoint_in", op);
  RT_DISPATCH_CUDA(k, gated_scan_carry_backward, gate, k, v, K, V, state_in, adjoint_in, dg, dk,
                   dv);
  dispatch_float(k, op, [&](auto t) {
    cpu::gated_scan_carry_backward<decltype(t)>(gate, k, v, K, V, state_in, adjoint_in, dg, dk,
                                                dv);
  });
}

namespace {
void check_rope(const Tensor& x, double base, const Tensor& y, const char* op) {
  require_rank(x, 4, op);
  RT_REQUIRE(x.dim(3) % 2 == 0, op, ": head dim must be even, got ", x.dim(3));
  RT_REQUIRE(base > 0, op, ": base must be positive, got ", base);
  require_shapes(x.shape(), {{&y, "output"}}, op);
  require_same_type(x, {&y}, op);
  // In place means the very same elements; a partial overlap would be read after written.
  RT_REQUIRE(detail::same_or_disjoint(x, y), op,
             ": input and output overlap without being the same buffer");
}
}  // namespace

void rope_forward(const Tensor& x, double base, std::int64_t position_offset, Tensor& y) {
  check_rope(x, base, y, "rope_forward");
  RT_DISPATCH_CUDA(x, rope_forward, x, base, position_offset, y);
  dispatch_float(x, "rope_forward",
                 [&](auto t) { cpu::rope_forward<decltype(t)>(x, base, position_offset, y); });
}

void rope_backward(const Tensor& dy, double base, std::int64_t position_offset, Tensor& dx) {
  check_rope(dy, base, dx, "rope_backward");
  RT_DISPATCH_CUDA(dy, rope_backward, dy, base, position_offset, dx);
  dispatch_float(dy, "rope_backward",
                 [&](auto t) { cpu::rope_backward<decltype(t)>(dy, base, position_offset, dx); });
}

namespace {
// (B, T, H, dh) as (B, T, H dh).
Tensor as_sequence(const Tensor& heads) {
  return heads.view({heads.dim(0), heads.dim(1), heads.dim(2) * heads.dim(3)});
}
}  // namespace

void gated_scan_rope_forward(const Tensor& g, const Tensor& k, const Tensor& v, const Tensor& q,
                             double base, std::int64_t position_offset, Tensor& gate, Tensor& K,
                             Tensor& V, Tensor& q_rope, Tensor& k_rope) {
  const char* op = "gated_scan_rope_forward";
  check_rope(q, base, q_rope, op);
  require_shapes(q.shape(),
                 {{&g, "g"}, {&k, "k"}, {&v, "v"}, {&gate, "gate"}, {&K, "K"}, {&V, "V"},
                  {&k_rope, "k_rope"}},
                 op);
  require_same_type(q, {&g, &k, &v, &K, &V, &k_rope}, op);
  require_f32_on_gpu(q, gate, "gate", op);
  const Tensor g_s = as_sequence(g), k_s = as_sequence(k), v_s = as_sequence(v);
  Tensor gate_s = as_sequence(gate), K_s = as_sequence(K), V_s = as_sequence(V);
  RT_DISPATCH_CUDA(q, gated_scan_rope_forward, g_s, k_s, v_s, q, base, position_offset, gate_s,
                   K_s, V_s, q_rope, k_rope);
  gated_scan_forward(g_s, k_s, v_s, gate_s, K_s, V_s);
  rope_forward(q, base, position_offset, q_rope);
  rope_forward(K, base, position_offset, k_rope);
}

void gated_scan_rope_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                              const Tensor& K, const Tensor& V, const Tensor& dq_rope,
                              const Tensor& dk_rope, const Tensor& dV, double base,
                              std::int64_t position_offset, Tensor& dg, Tensor& dk, Tensor& dv,
                              Tensor& dq) {
  const char* op = "gated_scan_rope_backward";
  check_rope(dq_rope, base, dq, op);
  require_shapes(dq_rope.shape(),
                 {{&gate, "gate"}, {&k, "k"}, {&v, "v"}, {&K, "K"}, {&V, "V"},
                  {&dk_rope, "dk_rope"}, {&dV, "dV"}, {&dg, "dg"}, {&dk, "dk"}, {&dv, "dv"}},
                 op);
  require_same_type(dq_rope, {&k, &v, &K, &V, &dk_rope, &dV, &dg, &dk, &dv}, op);
  require_f32_on_gpu(k, gate, "gate", op);
  const Tensor gate_s = as_sequence(gate), k_s = as_sequence(k), v_s = as_sequence(v);
  const Tensor K_s = as_sequence(K), V_s = as_sequence(V), dV_s = as_sequence(dV);
  Tensor dg_s = as_sequence(dg), dk_s = as_sequence(dk), dv_s = as_sequence(dv);
  RT_DISPATCH_CUDA(k, gated_scan_rope_backward, gate_s, k_s, v_s, K_s, V_s, dq_rope, dk_rope,
                   dV_s, base, position_offset, dg_s, dk_s, dv_s, dq);
  Tensor dK = Tensor::empty(dk_rope.shape(), dk_rope.dtype(), dk_rope.device());
  rope_backward(dq_rope, base, position_offset, dq);
  rope_backward(dk_rope, base, position_offset, dK);
  gated_scan_backward(gate_s, k_s, v_s, K_s, V_s, as_sequence(dK), dV_s, dg_s, dk_s, dv_s);
}

namespace {
// q (B, T, H, dh); lse (B, H, T).
void check_attention(const Tensor& q, const Tensor& lse, const Sparsity& rule, const char* op) {
  require_rank(q, 4, op);
  require_shapes({q.dim(0), q.dim(2), q.dim(1)}, {{&lse, "lse (B, H, T)"}}, op);
  require_f32_on_gpu(q, lse, "lse", op);
  detail::require_valid_rule(rule, op);
}
}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                       Tensor& out, Tensor& lse) {
  check_attention(q, lse, rule, "attention_forward");
  require_shapes(q.shape(), {{&k, "k"}, {&v, "v"}, {&out, "out"}}, "attention_forward");
  require_same_type(q, {&k, &v, &out}, "attention_forward");
  RT_DISPATCH_CUDA(q, attention_forward, q, k, v, rule, out, lse);
  dispatch_float(q, "attention_forward",
                 [&](auto t) { cpu::attention_forward<decltype(t)>(q, k, v, rule, out, lse); });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Sparsity& rule, Tensor& dq,
                        Tensor& dk, Tensor& dv) {
  check_attention(q, lse, rule, "attention_backward");
  require_shapes(q.shape(),
                 {{&k, "k"}, {&v, "v"}, {&out, "out"}, {&dout, "dout"}, {&dq, "dq"},
                  {&dk, "dk"}, {&dv, "dv"}},
                 "attention_backward");
  require_same_type(q, {&k, &v, &out, &dout, &dq, &dk, &dv}, "attention_backward");
  RT_DISPATCH_CUDA(q, attention_backward, q, k, v, out, lse, dout, rule, dq, dk, dv);
  dispatch_float(q, "attention_backward", [&](auto t) {
    cpu::attention_backward<decltype(t)>(q, k, v, out, lse, dout, rule, dq, dk, dv);
  });
}

}  // namespace ratrain::ops
