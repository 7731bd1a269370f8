// The CPU reference backend: one template per op of kernels/ops.hpp, instantiated for
// float and double in kernels/cpu/<family>.cpp.
//
// Invariants the callers (kernels/ops_*.cpp) guarantee before calling: shapes match
// the ops.hpp comments, every float operand is a host tensor of dtype T, index tensors
// are host i32. Data-dependent checks (token ids, labels in range) happen here, before
// any parallel loop, so that errors are thrown from the calling thread.
// Semantics (overwrite vs accumulate, aliasing) are exactly those of ops.hpp.
#pragma once

#include <cstdint>

#include "kernels/ops.hpp"

namespace ratrain::cpu {

// embedding.cpp
template <typename T> void embedding_forward(const Tensor& ids, const Tensor& emb, Tensor& out);
template <typename T> void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& demb);
template <typename T>
void embedding_shard_forward(const Tensor& ids, const Tensor& emb_shard, std::int64_t vocab_begin,
                             Tensor& out);
template <typename T>
void embedding_shard_backward(const Tensor& ids, const Tensor& dout, std::int64_t vocab_begin,
                              Tensor& demb_shard);
// The row of a vocab shard (rows [vocab_begin, vocab_begin + rows) of the vocabulary)
// that holds the global id, or -1 when the shard does not hold it (negative ids, the
// ignore label included). Shared by the embedding and cross-entropy shard kernels.
inline std::int64_t vocab_shard_row(std::int32_t id, std::int64_t vocab_begin,
                                    std::int64_t rows) {
  const std::int64_t row = std::int64_t{id} - vocab_begin;
  return row >= 0 && row < rows ? row : -1;
}

// rmsnorm.cpp
template <typename T>
void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rstd);
template <typename T>
void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                      Tensor& dx, Tensor& dw);

// linear.cpp (dx may be null)
template <typename T> void linear_forward(const Tensor& x, const Tensor& w, Tensor& y);
template <typename T>
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw);

// columns.cpp
template <typename T> void split_columns(const Tensor& x, Tensor* const* parts, int count);
template <typename T> void concat_columns(const Tensor* const* parts, int count, Tensor& x);

// gated_scan.cpp
template <typename T>
void gated_scan_forward(const Tensor& g, const Tensor& k, const Tensor& v, Tensor& gate,
                        Tensor& K, Tensor& V);
template <typename T>
void gated_scan_backward(const Tensor& gate, const Tensor& k, const Tensor& v, const Tensor& K,
                         const Tensor& V, const Tensor& dK, const Tensor& dV, Tensor& dg,
                         Tensor& dk, Tensor& dv);

// gated_scan_carry.cpp
template <typename T>
void gated_scan_state_summary(const Tensor& gate, const Tensor& K, const Tensor& V,
                              Tensor& summary);
template <typename T>
void gated_scan_adjoint_summary(const Tensor& gate, const Tensor& dK, const Tensor& dV,
                                const Tensor& K, const Tensor& V, Tensor& summary);
template <typename T>
void gated_scan_fold(const Tensor& summaries, ops::FoldOrder order, Tensor& state);
template <typename T>
void gated_scan_apply_carry(const Tensor& gate, const Tensor& state_in, Tensor& K, Tensor& V);
template <typename T>
void gated_scan_carry_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                               const Tensor& K, const Tensor& V, const Tensor& state_in,
                               const Tensor& adjoint_in, Tensor& dg, Tensor& dk, Tensor& dv);

// rope.cpp (y may alias x, dx may alias dy)
template <typename T>
void rope_forward(const Tensor& x, double base, std::int64_t position_offset, Tensor& y);
template <typename T>
void rope_backward(const Tensor& dy, double base, std::int64_t position_offset, Tensor& dx);

// attention.cpp
template <typename T>
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                       Tensor& out, Tensor& lse);
template <typename T>
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Sparsity& rule, Tensor& dq,
                        Tensor& dk, Tensor& dv);

// attention_keys.cpp (key_positions: host i32, strictly increasing)
template <typename T>
void attention_forward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions, const Sparsity& rule,
                            Tensor& out, Tensor& lse);
template <typename T>
void attention_backward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                             const Tensor& v, const Tensor& key_positions, const Tensor& out,
                             const Tensor& lse, const Tensor& dout, const Sparsity& rule,
                             Tensor& dq, Tensor& dk, Tensor& dv);
template <typename T>
void attention_merge(Tensor& out, Tensor& lse, const Tensor& part_out, const Tensor& part_lse);

// sequence_rows.cpp (src_rows, dst_rows: host i32; checked here: in range, dst distinct)
template <typename T>
void copy_sequence_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                        const Tensor& dst_rows, ops::Combine how);

// elementwise.cpp
template <typename T> void output_gate_forward(const Tensor& attn, const Tensor& o, Tensor& y);
template <typename T>
void output_gate_backward(const Tensor& attn, const Tensor& o, const Tensor& dy, Tensor& dattn,
                          Tensor& d_o);
template <typename T> void gelu_forward(const Tensor& x, Tensor& y);
template <typename T> void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);
template <typename T> void add_inplace(Tensor& acc, const Tensor& x);

// cross_entropy.cpp (dx, demb may each be null)
template <typename T>
ops::CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                                const Tensor& labels, double grad_scale,
                                                Tensor* dx, Tensor* demb);
std::int64_t count_valid_labels(const Tensor& labels);
template <typename T>
void cross_entropy_shard_stats(const Tensor& x, const Tensor& emb_shard,
                               std::int64_t vocab_begin, const Tensor& labels, Tensor& stats);
ops::CrossEntropyResult merge_cross_entropy_shard_stats(const Tensor& all_stats,
                                                        const Tensor& labels, Tensor& lse);
template <typename T>
void cross_entropy_shard_backward(const Tensor& x, const Tensor& emb_shard,
                                  std::int64_t vocab_begin, const Tensor& labels,
                                  const Tensor& lse, double grad_scale, Tensor* dx,
                                  Tensor* demb_shard);

// adamw.cpp
template <typename T>
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                  const ops::AdamWHyper& h);
template <typename T> double sum_of_squares(const Tensor& x);
template <typename T> void scale_inplace(Tensor& x, double factor);

// init.cpp
template <typename T>
void fill_normal(Tensor& out, const ops::NormalDraw& draw, const PartIndexMap& map);

}  // namespace ratrain::cpu
