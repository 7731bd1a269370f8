// Vocab-parallel embedding and cross-entropy: orchestration only. The per-element work is
// in the ops (kernels/ops.hpp: embedding_shard_*, cross_entropy_shard_*), the
// communication in the tp Group.
//
// Why the cross-entropy gathers statistics instead of all-reducing them: the row's
// log-sum-exp needs the max over shards before the sums of exp can be added, and Group
// reduces by sum only. Megatron therefore runs two all-reduces (max, then sums); here each
// rank contributes its (max, sum of exp, target logit) per row, (3, N) f64, to a single
// all-gather, and every rank folds the S contributions in rank order itself
// (ops::merge_cross_entropy_shard_stats): one round instead of two, bitwise the same loss
// and lse on every rank, and S * 3N doubles, small next to the (N, C) all-reduce of dx.
#include "parallel/vocab_parallel.hpp"

#include <algorithm>

#include "runtime/error.hpp"

namespace ratrain {
namespace {

// A group of one holds the whole table, so its shard must start at row 0.
void require_whole_table(std::int64_t vocab_begin, const char* what) {
  RT_REQUIRE(vocab_begin == 0, what,
             ": a tensor-parallel group of one holds the whole vocabulary, so vocab_begin must "
             "be 0, got ", vocab_begin);
}

}  // namespace

VocabRange vocab_range(std::int64_t vocab, int parts, int part) {
  RT_REQUIRE(parts >= 1, "vocab_range: the number of parts must be >= 1, got ", parts);
  RT_REQUIRE(part >= 0 && part < parts, "vocab_range: part ", part, " is outside [0, ", parts,
             ")");
  RT_REQUIRE(vocab >= parts, "vocab_range: a vocabulary of ", vocab,
             " rows cannot give each of ", parts, " parts a row");
  const std::int64_t base = vocab / parts, extra = vocab % parts;
  // The parts before `part` hold base rows each, plus one each for the first `extra`.
  const std::int64_t begin = part * base + std::min<std::int64_t>(part, extra);
  return {.begin = begin, .end = begin + base + (part < extra ? 1 : 0)};
}

void vocab_parallel_embedding_forward(const Group& tp, const Tensor& ids,
                                      const Tensor& emb_shard, std::int64_t vocab_begin,
                                      Tensor& out) {
  if (tp.size() == 1) {
    require_whole_table(vocab_begin, "vocab_parallel_embedding_forward");
    ops::embedding_forward(ids, emb_shard, out);
    return;
  }
  ops::embedding_shard_forward(ids, emb_shard, vocab_begin, out);  // zeros for others' ids
  tp.all_reduce_sum(out);  // each row has exactly one nonzero term: the owner's
}

void vocab_parallel_embedding_backward(const Group& tp, const Tensor& ids, const Tensor& dout,
                                       std::int64_t vocab_begin, Tensor& demb_shard) {
  if (tp.size() == 1) {
    require_whole_table(vocab_begin, "vocab_parallel_embedding_backward");
    ops::embedding_backward(ids, dout, demb_shard);
    return;
  }
  ops::embedding_shard_backward(ids, dout, vocab_begin, demb_shard);
}

ops::CrossEntropyResult vocab_parallel_cross_entropy(const Group& tp, const Tensor& x,
                                                     const Tensor& emb_shard,
                                                     std::int64_t vocab_begin,
                                                     const Tensor& labels, double grad_scale,
                                                     Tensor* dx, Tensor* demb_shard) {
  if (tp.size() == 1) {
    require_whole_table(vocab_begin, "vocab_parallel_cross_entropy");
    return ops::tied_head_cross_entropy(x, emb_shard, labels, grad_scale, dx, demb_shard);
  }
  const std::int64_t n = x.dim(0);
  // On the device of x: statistics and lse never leave the GPU in a GPU run.
  Tensor stats = Tensor::empty({ops::kShardStatRows, n}, DType::f64, x.device());  // (3, N)
  ops::cross_entropy_shard_stats(x, emb_shard, vocab_begin, labels, stats);
  const Tensor all_stats = tp.all_gather(stats);  // (S * 3, N), rank order
  Tensor lse = Tensor::empty({n}, DType::f64, x.device());  // (N)
  const ops::CrossEntropyResult result =
      ops::merge_cross_entropy_shard_stats(all_stats, labels, lse);
  if (dx || demb_shard) {
    ops::cross_entropy_shard_backward(x, emb_shard, vocab_begin, labels, lse, grad_scale, dx,
                                      demb_shard);
    if (dx) tp.all_reduce_sum(*dx);  // sum of the shards' G_r emb_r
  }
  return result;
}

}  // namespace ratrain
