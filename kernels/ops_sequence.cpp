// Host-side checks and dispatch for the sequence ops of ops.hpp: the gated recurrence,
// RoPE and attention under a visibility rule.
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
void check_rule(const Sparsity& rule, const char* op) {
  RT_REQUIRE(rule.dilation == -1 || rule.dilation >= 1, op,
             ": dilation must be 1 (dense), > 1 (dilated) or -1 (local only), got ",
             rule.dilation);
  RT_REQUIRE(rule.window >= 0 && rule.initial >= 0, op,
             ": window and initial must be >= 0, got W = ", rule.window, ", P = ", rule.initial);
}

// q (B, T, H, dh); lse (B, H, T).
void check_attention(const Tensor& q, const Tensor& lse, const Sparsity& rule, const char* op) {
  require_rank(q, 4, op);
  require_shapes({q.dim(0), q.dim(2), q.dim(1)}, {{&lse, "lse (B, H, T)"}}, op);
  require_f32_on_gpu(q, lse, "lse", op);
  check_rule(rule, op);
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
