// The vocab-parallel embedding and cross-entropy (parallel/vocab_parallel.hpp) under
// mpiexec, against the single-process ops on the full table, for every tp size that
// divides the world (1 included: a group of one calls those ops directly).
//
// Every rank builds the same full embedding, x, ids and labels from fixed random streams
// (kernel_test_util.hpp), takes its shard by vocab_range and runs the vocab-parallel
// function. V = 259 (the demo's byte vocabulary, no multiple of any group size), N = 157
// and C = 19; labels include -100 and fall in every shard; ids repeat.
// Tolerances: the embedding is compared bitwise (each output row has one nonzero term in
// its all-reduce; each demb row sums the same dout rows in the same order). The
// cross-entropy is compared norm-wise (rel_error) within 1e-12 in f64 and 1e-6 in f32:
// the merged log-sum-exp differs from the one-pass one by double rounding only, and dx
// sums its shards' terms in another order than one GEMM over the full vocabulary.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "parallel/parallel_context.hpp"
#include "parallel/vocab_parallel.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/unit/kernels/kernel_test_util.hpp"

namespace ratrain {
namespace {

constexpr std::int64_t kVocab = 259, kRows = 157, kChannels = 19;

double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-12 : 1e-6; }

// One tp group under test, its shard of the vocabulary and a label for messages.
struct TpCase {
  Group tp;
  VocabRange shard;
  std::string label;
};

// A layout tp x dp of the world for every tp that divides the world size.
std::vector<TpCase> tp_cases() {
  const Group world = world_group();
  std::vector<TpCase> cases;
  for (int tp = 1; tp <= world.size(); ++tp) {
    if (world.size() % tp != 0) continue;
    const ParallelSizes sizes{.tp = tp, .dp = world.size() / tp};
    const ParallelContext ctx = ParallelContext::create(world, sizes);
    cases.push_back({ctx.tp, vocab_range(kVocab, tp, ctx.tp.rank()),
                     to_string(sizes) + ", tp rank " + std::to_string(ctx.tp.rank())});
  }
  return cases;
}

// ids (N): repeated ids spread over the whole vocabulary.
Tensor token_ids() {
  std::vector<std::int32_t> ids(kRows);
  for (std::int64_t i = 0; i < kRows; ++i) ids[i] = std::int32_t((i * i * 7 + 3) % kVocab);
  return test::int_tensor(ids);
}

// labels (N): every seventh ignored, the others striding over every shard.
Tensor labels() {
  std::vector<std::int32_t> ls(kRows);
  for (std::int64_t i = 0; i < kRows; ++i)
    ls[i] = i % 7 == 3 ? ops::kIgnoreLabel : std::int32_t((i * 37 + 11) % kVocab);
  return test::int_tensor(ls);
}

// A copy of rows [shard.begin, shard.end) of `full`.
Tensor shard_of(const Tensor& full, const VocabRange& shard) {
  return test::clone(full.rows(shard.begin, shard.end));
}

// Every rank of `tp` holds the same bits of `value`.
void expect_same_on_every_rank(const Group& tp, double value, const std::string& label) {
  Tensor mine = Tensor::empty({1}, DType::f64);
  mine.data<double>()[0] = value;
  const Tensor all = tp.all_gather(mine);
  for (std::int64_t r = 0; r < all.numel(); ++r)
    EXPECT_EQ(all.item(r), value) << label << ": tp rank " << r;
}

TEST(VocabParallel, EmbeddingMatchesTheFullTableBitwise) {
  for (const TpCase& c : tp_cases()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      const std::string label = c.label + ", " + std::string(dtype_name(dtype));
      const Tensor ids = token_ids();
      const Tensor emb = test::random_tensor({kVocab, kChannels}, "emb", 1.0, dtype);
      Tensor expected = Tensor::empty({kRows, kChannels}, dtype);
      ops::embedding_forward(ids, emb, expected);
      Tensor out = Tensor::empty({kRows, kChannels}, dtype);
      vocab_parallel_embedding_forward(c.tp, ids, shard_of(emb, c.shard), c.shard.begin, out);
      EXPECT_EQ(test::max_abs_diff(out, expected), 0.0) << label;

      const Tensor dout = test::random_tensor({kRows, kChannels}, "dout", 1.0, dtype);
      Tensor demb = test::random_tensor({kVocab, kChannels}, "demb0", 1.0, dtype);
      Tensor demb_shard = shard_of(demb, c.shard);
      ops::embedding_backward(ids, dout, demb);
      vocab_parallel_embedding_backward(c.tp, ids, dout, c.shard.begin, demb_shard);
      EXPECT_EQ(test::max_abs_diff(demb_shard, demb.rows(c.shard.begin, c.shard.end)), 0.0)
          << label;
    }
  }
}

TEST(VocabParallel, CrossEntropyMatchesTheFullHead) {
  const double grad_scale = 1.0 / 50;
  for (const TpCase& c : tp_cases()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      const std::string label = c.label + ", " + std::string(dtype_name(dtype));
      const Tensor x = test::random_tensor({kRows, kChannels}, "x", 1.0, dtype);
      const Tensor emb = test::random_tensor({kVocab, kChannels}, "emb", 1.0, dtype);
      const Tensor ls = labels();
      Tensor dx_full = Tensor::empty({kRows, kChannels}, dtype);
      Tensor demb_full = test::random_tensor({kVocab, kChannels}, "demb0", 1.0, dtype);
      Tensor demb_shard = shard_of(demb_full, c.shard);
      const auto expected =
          ops::tied_head_cross_entropy(x, emb, ls, grad_scale, &dx_full, &demb_full);

      Tensor dx = Tensor::empty({kRows, kChannels}, dtype);
      const auto got = vocab_parallel_cross_entropy(c.tp, x, shard_of(emb, c.shard),
                                                    c.shard.begin, ls, grad_scale, &dx,
                                                    &demb_shard);
      EXPECT_EQ(got.valid, expected.valid) << label;
      EXPECT_NEAR(got.loss_sum, expected.loss_sum,
                  tolerance(dtype) * std::abs(expected.loss_sum))
          << label;
      EXPECT_LT(test::rel_error(dx, dx_full), tolerance(dtype)) << label;
      EXPECT_LT(test::rel_error(demb_shard, demb_full.rows(c.shard.begin, c.shard.end)),
                tolerance(dtype))
          << label;
      expect_same_on_every_rank(c.tp, got.loss_sum, label + ", loss");

      // Forward only: the same loss, no gradient pass.
      const auto loss_only = vocab_parallel_cross_entropy(
          c.tp, x, shard_of(emb, c.shard), c.shard.begin, ls, grad_scale, nullptr, nullptr);
      EXPECT_EQ(loss_only.loss_sum, got.loss_sum) << label;
      EXPECT_EQ(loss_only.valid, got.valid) << label;
    }
  }
}

}  // namespace
}  // namespace ratrain
