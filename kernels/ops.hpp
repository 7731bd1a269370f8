// The op API: every numerical op of RAT+ training, declared once (DESIGN.md
// principle 1). Each op takes Tensors, checks shapes, dtypes and devices on the
// host, and dispatches to a backend: kernels/cpu (reference, templated on float and
// double) now, kernels/cuda (bf16, fused) later.
//
// Conventions
// - Shapes in comments: N = rows (B*T), C = channels, V = vocab, H heads, dh head dim.
// - Every tensor is contiguous row-major. All float operands of one op share a dtype.
// - Outputs named `out`/`d<x>` for activations are OVERWRITTEN.
// - Parameter-gradient outputs (dweight, demb) are ACCUMULATED (+=): the tied
//   embedding receives two contributions, and gradient accumulation sums batches.
// - Token ids and labels are i32; label -100 means "ignore".
#pragma once

#include <cstdint>

#include "kernels/visibility.hpp"
#include "runtime/tensor.hpp"

namespace ratrain::ops {

inline constexpr std::int32_t kIgnoreLabel = -100;

// ---- embedding -------------------------------------------------------------------
// out (N, C) = emb[ids]; ids (N) i32 in [0, V) (checked: an id >= V is an error that
// names the id and its position).
void embedding_forward(const Tensor& ids, const Tensor& emb, Tensor& out);
// demb[ids[n]] += dout[n]
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& demb);

// ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * w ------------------------------------
// x (N, C), w (C), y (N, C), rstd (N) = 1 / sqrt(mean(x^2) + eps); rstd has x's dtype
// on the CPU and is f32 on the GPU.
void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rstd);
// dx (N, C) overwritten; dw (C) accumulated.
void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                      Tensor& dx, Tensor& dw);

// ---- linear (no bias): y = x W^T --------------------------------------------------
// x (N, I), W (O, I), y (N, O).
void linear_forward(const Tensor& x, const Tensor& w, Tensor& y);
// dx (N, I) = dy W (overwritten, skipped if dx is undefined); dW (O, I) += dy^T x.
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw);

// ---- column split / concat (the five segments o, q, k, v, g of W_in's output) -------
// x (N, k*C) -> parts[s] (N, C) = x[:, s*C:(s+1)*C].
void split_columns(const Tensor& x, Tensor* const* parts, int count);
void concat_columns(const Tensor* const* parts, int count, Tensor& x);

// ---- gated recurrence (fp32-or-wider state) -----------------------------------------
// g, k, v: (B, T, C). gate = sigmoid(g) (B, T, C).
//   K_t = gate_t * K_{t-1} + (1 - gate_t) * k_t,   V likewise with the same gate,
// zero initial state, scanned independently per (batch, channel) along T.
void gated_scan_forward(const Tensor& g, const Tensor& k, const Tensor& v, Tensor& gate,
                        Tensor& K, Tensor& V);
// dK, dV: gradients w.r.t. the outputs K and V. Produces dg, dk, dv (overwritten).
void gated_scan_backward(const Tensor& gate, const Tensor& k, const Tensor& v, const Tensor& K,
                         const Tensor& V, const Tensor& dK, const Tensor& dV, Tensor& dg,
                         Tensor& dk, Tensor& dv);

// ---- RoPE, rotate-half convention --------------------------------------------------
// x, y: (B, T, H, dh), dh even. For p = position_offset + t, c < dh/2,
// theta = p * base^(-2c/dh):
//   y[c]        = x[c] cos(theta) - x[c + dh/2] sin(theta)
//   y[c + dh/2] = x[c + dh/2] cos(theta) + x[c] sin(theta)
// In-place (y aliasing x) is allowed.
void rope_forward(const Tensor& x, double base, std::int64_t position_offset, Tensor& y);
// dx = R^T dy; in-place allowed.
void rope_backward(const Tensor& dy, double base, std::int64_t position_offset, Tensor& dx);

// ---- attention under the RAT+ visibility rule -----------------------------------------
// q, k, v, out: (B, T, H, dh); lse (B, H, T) = log-sum-exp of the scaled scores of each
// query over its visible keys. Scale 1/sqrt(dh). Online softmax: memory O(T), never
// a T x T buffer.
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                       Tensor& out, Tensor& lse);
// dq, dk, dv overwritten.
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Sparsity& rule, Tensor& dq,
                        Tensor& dk, Tensor& dv);

// ---- output gate: y = attn * sigmoid(o) -------------------------------------------
void output_gate_forward(const Tensor& attn, const Tensor& o, Tensor& y);
void output_gate_backward(const Tensor& attn, const Tensor& o, const Tensor& dy, Tensor& dattn,
                          Tensor& d_o);

// ---- exact GELU: y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) ------------------------
void gelu_forward(const Tensor& x, Tensor& y);
void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);

// ---- elementwise helpers -------------------------------------------------------------
void add_inplace(Tensor& acc, const Tensor& x);  // acc += x

// ---- tied head + cross-entropy -----------------------------------------------------
struct CrossEntropyResult {
  double loss_sum = 0;      // sum over valid rows of -log softmax(logits)[label]
  std::int64_t valid = 0;   // rows whose label != -100
};
// logits = x emb^T computed a block of rows at a time (never (N, V) at once);
// x (N, C), emb (V, C), labels (N) i32 (-100 ignored; others must be in [0, V)).
// If dx is given: dx (N, C) = grad_scale * d(loss_sum)/dx, overwritten; and
// demb (V, C) += grad_scale * d(loss_sum)/d(emb). grad_scale is 1/valid for a mean.
CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                           const Tensor& labels, double grad_scale, Tensor* dx,
                                           Tensor* demb);
// Number of labels != -100.
std::int64_t count_valid_labels(const Tensor& labels);

// ---- optimizer ------------------------------------------------------------------------
struct AdamWHyper {
  double lr = 0;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  std::int64_t step = 1;  // 1-based, for bias correction
};
// PyTorch AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps). All flat, same numel.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h);
// sum of x^2 in double.
double sum_of_squares(const Tensor& x);
void scale_inplace(Tensor& x, double factor);

}  // namespace ratrain::ops
