// Vocab-parallel tied embedding and fused vocab-parallel cross-entropy (DESIGN.md
// "Parallel layout", TP): the (V, C) embedding's rows are split over the tp group, rank r
// holding emb_shard = rows [vocab_begin_r, vocab_begin_r + Vs_r), and no rank ever holds
// the full table or a full row of logits.
//
// Invariants:
// - Inputs other than the shards (ids, labels, x, dout) are replicated over tp: every rank
//   passes the same values, and every rank gets the same results (the out, dx, loss and
//   valid count returned are identical on every rank).
// - With tp.size() == 1 the shard is the whole table (vocab_begin must be 0) and each
//   function is the single-process op itself (ops::embedding_forward, ...): no extra work.
// - Forward and backward come in pairs (STYLE.md item 6): the embedding's forward
//   all-reduce has the identity as backward (dout is already replicated); the
//   cross-entropy all-reduces its partial dx itself.
// - Ids and labels must lie in [0, V) (or be -100 for labels). A rank knows only its own
//   rows, so an id >= V is not detected here (it reads as a zero row / a zero target
//   logit); the token datasets check ids against the vocabulary on load.
#pragma once

#include <cstdint>

#include "kernels/ops.hpp"
#include "parallel/group.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

// Rows [begin, end) of a vocabulary of `vocab` rows held by part `part` of `parts`: the
// first vocab % parts parts hold one row more than the others.
// Example: vocab = 259, parts = 4: 259 = 4 * 64 + 3, so parts 0..2 hold 65 rows and
// part 3 holds 64: [0, 65), [65, 130), [130, 195), [195, 259).
// Requires 1 <= parts <= vocab (every part holds at least one row) and 0 <= part < parts.
struct VocabRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  bool operator==(const VocabRange&) const = default;
};
VocabRange vocab_range(std::int64_t vocab, int parts, int part);

// out (N, C) = full embedding[ids]: each rank looks up the ids it owns (zeros elsewhere),
// then all-reduce over tp. ids (N) i32 in [0, V); emb_shard (Vs, C).
void vocab_parallel_embedding_forward(const Group& tp, const Tensor& ids,
                                      const Tensor& emb_shard, std::int64_t vocab_begin,
                                      Tensor& out);
// demb_shard (Vs, C) += dout rows of the ids this rank owns. No communication: dout is
// replicated over tp. tp decides, as in forward, whether the shard is the whole table.
void vocab_parallel_embedding_backward(const Group& tp, const Tensor& ids, const Tensor& dout,
                                       std::int64_t vocab_begin, Tensor& demb_shard);

// ops::tied_head_cross_entropy's result with the full embedding, from this rank's shard:
// x (N, C) replicated over tp, emb_shard (Vs, C), labels (N) global ids or -100. Never
// gathers logits: per row, each shard's max logit, sum of exp and (on the owner) target
// logit travel in one all-gather of (3, N) f64 per rank (see the .cpp for why a gather).
// If dx is given: dx (N, C) is the FULL gradient on every rank (the shards' terms are
// all-reduced over tp), overwritten. If demb_shard is given: demb_shard += this shard's
// gradient. Returns the loss sum and valid count, identical on every rank.
ops::CrossEntropyResult vocab_parallel_cross_entropy(const Group& tp, const Tensor& x,
                                                     const Tensor& emb_shard,
                                                     std::int64_t vocab_begin,
                                                     const Tensor& labels, double grad_scale,
                                                     Tensor* dx, Tensor* demb_shard);

}  // namespace ratrain
