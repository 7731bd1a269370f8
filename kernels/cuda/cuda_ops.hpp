// Launchers of the CUDA backend (DESIGN.md principle 1), called by the host-side
// dispatch of kernels/ops_*.cpp after its shape and dtype checks, for device tensors.
// Storage is bf16 or f32 (fp32 accumulation always); each launcher takes the stream
// it enqueues on and returns without synchronising.
// Compiled only in a CUDA build (RATRAIN_HAVE_CUDA).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/ops.hpp"
#include "runtime/compute_stream.hpp"
#include "runtime/tensor.hpp"

namespace ratrain::cuda {

// x, y (N, C), w (C) in one storage type (bf16 or f32); rstd (N) and dw (C) f32.
void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rstd,
                     cudaStream_t stream);
// dx (N, C) overwritten; dw (C) accumulated.
void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                      Tensor& dx, Tensor& dw, cudaStream_t stream);

// Linear layers through cuBLASLt (kernels/cuda/gemm.cu): y = x W^T; dx = dy W (skipped
// when dx is null); dW (f32) += dy^T x.
void linear_forward(const Tensor& x, const Tensor& w, Tensor& y, cudaStream_t stream);
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                     cudaStream_t stream);

// Element-wise ops (kernels/cuda/elementwise.cu); same semantics as ops.hpp.
void output_gate_forward(const Tensor& attn, const Tensor& o, Tensor& y, cudaStream_t stream);
void output_gate_backward(const Tensor& attn, const Tensor& o, const Tensor& dy, Tensor& dattn,
                          Tensor& d_o, cudaStream_t stream);
void gelu_forward(const Tensor& x, Tensor& y, cudaStream_t stream);
void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx, cudaStream_t stream);
void add_inplace(Tensor& acc, const Tensor& x, cudaStream_t stream);

// Embedding and column split/concat (kernels/cuda/embedding.cu, columns.cu). An id
// outside [0, V) is an error naming the id and its position, as on the CPU; demb (V, C)
// is f32 and accumulated deterministically (no floating-point atomics).
void embedding_forward(const Tensor& ids, const Tensor& emb, Tensor& out, cudaStream_t stream);
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& demb, cudaStream_t stream);
// The same over a vocab shard (rows [vocab_begin, vocab_begin + Vs) of the table, ops.hpp):
// other shards' ids give zero rows and add nothing; only a negative id is an error.
void embedding_shard_forward(const Tensor& ids, const Tensor& emb_shard, std::int64_t vocab_begin,
                             Tensor& out, cudaStream_t stream);
void embedding_shard_backward(const Tensor& ids, const Tensor& dout, std::int64_t vocab_begin,
                              Tensor& demb_shard, cudaStream_t stream);
void split_columns(const Tensor& x, Tensor* const* parts, int count, cudaStream_t stream);
void concat_columns(const Tensor* const* parts, int count, Tensor& x, cudaStream_t stream);

// Sequence row copies of sequence parallelism (kernels/cuda/sequence_rows.cu): src, dst in
// one storage type (add in fp32), src_rows / dst_rows i32 on the device, NOT checked (an
// index out of range skips its row; ops.hpp says why).
void copy_sequence_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                        const Tensor& dst_rows, ops::Combine how, cudaStream_t stream);

// Gated recurrence and RoPE (kernels/cuda/gated_scan.cu, rope.cu): g, k, v, K, V and the
// gradients in one storage type; gate f32 (the recurrence runs in fp32).
void gated_scan_forward(const Tensor& g, const Tensor& k, const Tensor& v, Tensor& gate,
                        Tensor& K, Tensor& V, cudaStream_t stream);
void gated_scan_backward(const Tensor& gate, const Tensor& k, const Tensor& v, const Tensor& K,
                         const Tensor& V, const Tensor& dK, const Tensor& dV, Tensor& dg,
                         Tensor& dk, Tensor& dv, cudaStream_t stream);
// The recurrence and RoPE in one pass where dh % 64 == 0 (kernels/cuda/gated_scan.cu):
// the recurrence's operands (g, k, v, gate, K, V, dV, dg, dk, dv) as (B, T, H dh), the
// rotated ones (q, q_rope, k_rope, dq_rope, dk_rope, dq) as (B, T, H, dh); gate f32.
void gated_scan_rope_forward(const Tensor& g, const Tensor& k, const Tensor& v, const Tensor& q,
                             double base, std::int64_t position_offset, Tensor& gate, Tensor& K,
                             Tensor& V, Tensor& q_rope, Tensor& k_rope, cudaStream_t stream);
void gated_scan_rope_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                              const Tensor& K, const Tensor& V, const Tensor& dq_rope,
                              const Tensor& dk_rope, const Tensor& dV, double base,
                              std::int64_t position_offset, Tensor& dg, Tensor& dk, Tensor& dv,
                              Tensor& dq, cudaStream_t stream);
// The recurrence across chunks of T (kernels/cuda/gated_scan_carry.cu): gate, summaries and
// carried states f32; k, v, K, V and the gradients in one storage type.
void gated_scan_state_summary(const Tensor& gate, const Tensor& K, const Tensor& V,
                              Tensor& summary, cudaStream_t stream);
void gated_scan_adjoint_summary(const Tensor& gate, const Tensor& dK, const Tensor& dV,
                                const Tensor& K, const Tensor& V, Tensor& summary,
                                cudaStream_t stream);
void gated_scan_fold(const Tensor& summaries, ops::FoldOrder order, Tensor& state,
                     cudaStream_t stream);
void gated_scan_apply_carry(const Tensor& gate, const Tensor& state_in, Tensor& K, Tensor& V,
                            cudaStream_t stream);
void gated_scan_carry_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                               const Tensor& K, const Tensor& V, const Tensor& state_in,
                               const Tensor& adjoint_in, Tensor& dg, Tensor& dk, Tensor& dv,
                               cudaStream_t stream);
void rope_forward(const Tensor& x, double base, std::int64_t position_offset, Tensor& y,
                  cudaStream_t stream);
void rope_backward(const Tensor& dy, double base, std::int64_t position_offset, Tensor& dx,
                   cudaStream_t stream);

// Flash attention under the RAT+ visibility rule (kernels/cuda/attention_*.cu); lse f32.
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                       Tensor& out, Tensor& lse, cudaStream_t stream);
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Sparsity& rule, Tensor& dq,
                        Tensor& dk, Tensor& dv, cudaStream_t stream);
// Attention over an explicit key set and the log-sum-exp merge (kernels/cuda/
// attention_keys.cu; semantics in ops.hpp): lse f32, key_positions i32 on the device and
// host_positions the same values on the host, already checked (>= 0, increasing), from
// which the launchers list the global keys. The backward adds to dq, dk, dv.
void attention_forward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions,
                            const Tensor& host_positions, const Sparsity& rule, Tensor& out,
                            Tensor& lse, cudaStream_t stream);
void attention_backward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                             const Tensor& v, const Tensor& key_positions,
                             const Tensor& host_positions, const Tensor& out, const Tensor& lse,
                             const Tensor& dout, const Sparsity& rule, Tensor& dq, Tensor& dk,
                             Tensor& dv, cudaStream_t stream);
void attention_merge(Tensor& out, Tensor& lse, const Tensor& part_out, const Tensor& part_lse,
                     cudaStream_t stream);

// Tied head + cross-entropy, a block of rows at a time (kernels/cuda/cross_entropy.cu);
// labels i32 on the device; demb f32 (accumulated). Returns the loss sum and the number
// of valid labels, so it synchronises the stream once.
ops::CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                                const Tensor& labels, double grad_scale,
                                                Tensor* dx, Tensor* demb, cudaStream_t stream);
std::int64_t count_valid_labels(const Tensor& labels, cudaStream_t stream);
// The tied head's two vocab-shard phases and the fold between them (ops.hpp); stats (3, N),
// all_stats (S * 3, N) and lse (N) f64 on the device. Only the fold synchronises (once, for
// the loss sum); it also reports a bad label, which the phases treat as ignored.
void cross_entropy_shard_stats(const Tensor& x, const Tensor& emb_shard, std::int64_t vocab_begin,
                               const Tensor& labels, Tensor& stats, cudaStream_t stream);
ops::CrossEntropyResult merge_cross_entropy_shard_stats(const Tensor& all_stats,
                                                        const Tensor& labels, Tensor& lse,
                                                        cudaStream_t stream);
void cross_entropy_shard_backward(const Tensor& x, const Tensor& emb_shard,
                                  std::int64_t vocab_begin, const Tensor& labels,
                                  const Tensor& lse, double grad_scale, Tensor* dx,
                                  Tensor* demb_shard, cudaStream_t stream);

// Optimizer (kernels/cuda/optimizer.cu): AdamW on f32 buffers; sum of squares (returned to
// the host, so it synchronises the stream) and scaling of f32 or bf16 buffers.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                  const ops::AdamWHyper& hyper, cudaStream_t stream);
double sum_of_squares(const Tensor& x, cudaStream_t stream);
void scale_inplace(Tensor& x, double factor, cudaStream_t stream);

// Parameter initialisation (kernels/cuda/init.cu), f32 or bf16 outputs.
void fill_normal(Tensor& out, const ops::NormalDraw& draw, const PartIndexMap& map,
                 cudaStream_t stream);

}  // namespace ratrain::cuda
