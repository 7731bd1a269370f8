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

#include "kernels/part_index_map.hpp"
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
// Over a vocab-parallel shard (parallel/vocab_parallel.hpp): emb_shard / demb_shard (Vs, C)
// hold rows [vocab_begin, vocab_begin + Vs) of the (V, C) table. ids (N) i32 must be >= 0
// (checked like embedding_forward's); an id outside the shard is another shard's. V is
// unknown here, so an id >= V is not caught: the token datasets check ids on load.
// out (N, C): row n = emb_shard[ids[n] - vocab_begin] where the shard holds ids[n], else 0.
void embedding_shard_forward(const Tensor& ids, const Tensor& emb_shard,
                             std::int64_t vocab_begin, Tensor& out);
// demb_shard[ids[n] - vocab_begin] += dout[n] for the ids the shard holds; others skipped.
void embedding_shard_backward(const Tensor& ids, const Tensor& dout, std::int64_t vocab_begin,
                              Tensor& demb_shard);

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

// The recurrence across chunks of T (sequence parallelism: parallel/sequence_scan.cpp has
// the algorithm and its derivation). Per (batch, channel) a chunk maps the state s entering
// it to P s + X, with P the product of its gates and X the chunk scanned from a zero state;
// in backward it maps the adjoint c arriving at its last row to the adjoint P c + Z leaving
// its first row. A summary stores such maps as fields (F, B, C), field 0 = P. Summaries and
// carried states are f32 on the GPU (like the gate), the operands' type on the CPU.
// gate, k, v, K, V, dK, dV, dg, dk, dv below: (B, Tc, C); the summaries need Tc >= 1.
inline constexpr int kStateSummaryFields = 3;
inline constexpr int kAdjointSummaryFields = 5;
// summary (3, B, C) = [P, K[:, Tc-1], V[:, Tc-1]] of a chunk scanned from a zero state.
void gated_scan_state_summary(const Tensor& gate, const Tensor& K, const Tensor& V,
                              Tensor& summary);
// summary (5, B, C) = [P, Z_K, Z_V, K[:, Tc-1], V[:, Tc-1]]:
// Z_K = sum_t (prod_{s<=t} gate_s) dK_t, the adjoint of the state entering the chunk when
// nothing arrives from later chunks (Z_V likewise from dV); then the chunk's end state,
// which the next chunk enters with.
void gated_scan_adjoint_summary(const Tensor& gate, const Tensor& dK, const Tensor& dV,
                                const Tensor& K, const Tensor& V, Tensor& summary);
// Which chunk's map a fold applies first.
enum class FoldOrder { first_to_last, last_to_first };
// summaries (n, F, B, C), F >= 3: fields 0..2 of chunk i are its map (P, X_K, X_V); later
// fields are not read. state (2, B, C) = the n maps applied to a zero state in `order`:
// first_to_last gives the (K, V) leaving chunk n-1, last_to_first the adjoints leaving
// chunk 0. Zeros when n = 0.
void gated_scan_fold(const Tensor& summaries, FoldOrder order, Tensor& state);
// K_t += (prod_{s<=t} gate_s) state_in[0] and V_t likewise with state_in[1], in place:
// turns K, V scanned from a zero state into K, V scanned from state_in (2, B, C).
void gated_scan_apply_carry(const Tensor& gate, const Tensor& state_in, Tensor& K, Tensor& V);
// Corrects, in place, dg, dk, dv of gated_scan_backward (zero entering state, nothing
// arriving from later rows) to the gradients of the chunk entered with state_in (2, B, C)
// and receiving adjoint_in (2, B, C) = d loss / d (K, V)[:, Tc-1] through the later chunks.
// K, V: the chunk's states as entered with state_in.
void gated_scan_carry_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                               const Tensor& K, const Tensor& V, const Tensor& state_in,
                               const Tensor& adjoint_in, Tensor& dg, Tensor& dk, Tensor& dv);

// ---- RoPE, rotate-half convention --------------------------------------------------
// x, y: (B, T, H, dh), dh even. For p = position_offset + t, c < dh/2,
// theta = p * base^(-2c/dh):
//   y[c]        = x[c] cos(theta) - x[c + dh/2] sin(theta)
//   y[c + dh/2] = x[c + dh/2] cos(theta) + x[c] sin(theta)
// In-place (y aliasing x) is allowed.
void rope_forward(const Tensor& x, double base, std::int64_t position_offset, Tensor& y);
// dx = R^T dy; in-place allowed.
void rope_backward(const Tensor& dy, double base, std::int64_t position_offset, Tensor& dx);

// ---- the recurrence and RoPE in one pass (RATPLUS.md steps 3-5) ----------------------
// Every operand (B, T, H, dh); gate f32 on the GPU. gated_scan_forward over (B, T, H dh),
// then q_rope = rope_forward(q) and k_rope = rope_forward(K), at `position_offset`. The
// CUDA kernel rotates K in fp32 before rounding it (bf16 k_rope may differ from
// rope_forward of the rounded K by one rounding) and falls back to the separate kernels
// unless dh % 64 == 0. The recurrence starts from a zero state: a sequence-parallel chunk
// whose K gets a carried state afterwards must rotate after that (model/rat_block.cpp).
void gated_scan_rope_forward(const Tensor& g, const Tensor& k, const Tensor& v, const Tensor& q,
                             double base, std::int64_t position_offset, Tensor& gate, Tensor& K,
                             Tensor& V, Tensor& q_rope, Tensor& k_rope);
// The mirror image: dq = rope_backward(dq_rope), dK = rope_backward(dk_rope), then
// gated_scan_backward with dK, dV. dq_rope, dk_rope are not written.
void gated_scan_rope_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                              const Tensor& K, const Tensor& V, const Tensor& dq_rope,
                              const Tensor& dk_rope, const Tensor& dV, double base,
                              std::int64_t position_offset, Tensor& dg, Tensor& dk, Tensor& dv,
                              Tensor& dq);

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

// ---- attention over an explicit key set (sequence parallelism) ------------------------
// The queries q (B, Tq, H, dh) sit at global positions q_begin + t; the keys k, v
// (B, Tk, H, dh) at key_positions (Tk), i32, strictly increasing, >= 0. Query i counts
// key n only when is_visible(rule, i, key_positions[n]), so attention over a disjoint
// split of the keys, merged with attention_merge, equals attention over their union.
// out (B, Tq, H, dh), lse (B, H, Tq) of the queries over these keys only; a query that
// sees none of them gets out = 0, lse = -inf. On the GPU lse is f32 and the key positions
// are copied to the host once per call for their checks (a sync).
void attention_forward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions, const Sparsity& rule,
                            Tensor& out, Tensor& lse);
// Given the FINAL out and lse of the queries (over all their keys, of which this set
// may be a part), the gradient terms of the query-key pairs of this set:
// dq (B, Tq, H, dh), dk, dv (B, Tk, H, dh) are ACCUMULATED (+=), so that a query's
// gradient sums over the key sets its keys were split into and a key's over the query
// blocks that see it (ring attention carries dk, dv along with their block).
void attention_backward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                             const Tensor& v, const Tensor& key_positions, const Tensor& out,
                             const Tensor& lse, const Tensor& dout, const Sparsity& rule,
                             Tensor& dq, Tensor& dk, Tensor& dv);
// The flash merge of two partial results of the same queries over disjoint key sets:
// (out, lse) becomes the result over the union, in place:
//   lse = log(e^lse + e^part_lse),  out = e^(lse_old - lse) out + e^(part_lse - lse) part_out.
// out, part_out (B, T, H, dh); lse, part_lse (B, H, T). lse = -inf marks an empty part.
void attention_merge(Tensor& out, Tensor& lse, const Tensor& part_out, const Tensor& part_lse);

// ---- sequence row copies (sequence parallelism: parallel/sequence_rows.hpp) -------------
// A sequence row t of a (B, T, H, dh) tensor is the (H, dh) block of position t in every
// sample. For every sample b and every n < N:
//   dst[b, dst_rows[n]] = src[b, src_rows[n]]    (Combine::assign)
//   dst[b, dst_rows[n]] += src[b, src_rows[n]]   (Combine::add; fp32 arithmetic on the GPU,
//                                                 the operands' type on the CPU)
// src (B, Ts, H, dh) and dst (B, Td, H, dh): one dtype and device (host f32 / f64, device
// bf16 / f32), disjoint storage. src_rows, dst_rows (N): i32 index tensors on that device
// (i32 like every index of the op API: Tensor has no 64-bit integer type, and sequence
// parallelism keeps positions within i32). Every src_rows[n] in [0, Ts), every
// dst_rows[n] in [0, Td), dst_rows pairwise distinct (so that the rows are independent
// and the GPU needs no atomics). On the CPU these are checked before any row is touched;
// on the GPU they are NOT (a check would synchronise the stream on every call): an index
// out of range there skips its row, so no memory outside the tensors is touched, and a
// repeated dst row makes the result unspecified. Callers validate on the host, as
// copy_rows does before uploading its row lists.
enum class Combine { assign, add };
void copy_sequence_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                        const Tensor& dst_rows, Combine how);

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

// tied_head_cross_entropy over a vocab-parallel shard, in two phases around a collective
// of the tp group (parallel/vocab_parallel.cpp): emb_shard / demb_shard (Vs, C), Vs >= 1,
// hold rows [vocab_begin, vocab_begin + Vs) of the (V, C) embedding; x (N, C); labels (N)
// i32 are global ids (>= 0, checked) or -100. Both phases compute z = x emb_shard^T a block
// of rows at a time (phase 2 recomputes it rather than keep (N, Vs)). stats and lse are
// f64 on the device of x; on the GPU a bad label is reported by the merge (one sync).
//
// Phase 1: this shard's statistics of every row (ignored ones included), stats
// (kShardStatRows, N) f64, overwritten:
//   row 0: max_j z[n, j];  row 1: sum_j exp(z[n, j] - max);
//   row 2: z[n, labels[n] - vocab_begin] where the shard holds labels[n], else exactly 0.
inline constexpr std::int64_t kShardStatRows = 3;
void cross_entropy_shard_stats(const Tensor& x, const Tensor& emb_shard,
                               std::int64_t vocab_begin, const Tensor& labels, Tensor& stats);
// Folds the S shards' stats, stacked in shard order (as Group::all_gather returns them):
// all_stats (S * kShardStatRows, N) f64. lse (N) f64 = each full row's log-sum-exp,
// overwritten. Returns tied_head_cross_entropy's loss sum (of lse - target logit over the
// valid rows, in row order) and valid count.
CrossEntropyResult merge_cross_entropy_shard_stats(const Tensor& all_stats,
                                                   const Tensor& labels, Tensor& lse);
// Phase 2, given lse: G = grad_scale * (exp(z - lse) - onehot(labels - vocab_begin)) (no
// one-hot where another shard holds the label; a zero row where it is ignored).
// If given: dx (N, C) = G emb_shard, this shard's term of the full dx (overwritten);
// demb_shard += G^T x.
void cross_entropy_shard_backward(const Tensor& x, const Tensor& emb_shard,
                                  std::int64_t vocab_begin, const Tensor& labels,
                                  const Tensor& lse, double grad_scale, Tensor* dx,
                                  Tensor* demb_shard);

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

// ---- parameter initialisation ---------------------------------------------------------
// out[i] = mean + std * CounterRng(seed, key).normal(map.global(i)), formed in double and
// rounded to out's dtype (bf16 through float, as Tensor::copy_from rounds). out is any
// contiguous view of a parameter part, `map` its element positions in the global tensor
// (ParamEntry::index_map), so every layout draws the same numbers (DESIGN.md principle
// 4). On the GPU the draw runs in place (no host buffer, no transfer); its libm may round
// the last bits of a double differently from the host's, so a rare element can differ by
// one ulp of f32 from the CPU's.
struct NormalDraw {
  std::uint64_t seed = 0;
  std::uint64_t key = 0;  // runtime/rng.hpp stream_key of the parameter's name
  double mean = 0;
  double std = 1;  // 0 fills `mean` exactly
};
void fill_normal(Tensor& out, const NormalDraw& draw, const PartIndexMap& map);

}  // namespace ratrain::ops
