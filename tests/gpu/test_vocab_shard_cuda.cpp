// CUDA vocab-shard ops (ops.hpp: embedding_shard_forward/backward, cross_entropy_shard_stats,
// merge_cross_entropy_shard_stats, cross_entropy_shard_backward) against the CPU reference in
// f64 on the same rounded inputs, one shard at a time, and the folded shards against the
// GPU's own full tied head.
//
// Splits: V = 1000 in 3 uneven shards (334, 333, 333 rows, as parallel/vocab_parallel's
// vocab_range deals them), V = 97 in 2 (49, 48) and V = 64000 in 2 of 32000 rows (a logits
// block then holds 2048 rows, so N = 2100 crosses a block boundary). N = 1, 37, 515, 2100:
// no multiple of the 128-row granule or of the 512-thread row kernel. Each shard is a
// rows() view of one device table, as a tp rank's parameter view is, so its base address is
// only as aligned as begin * C * sizeof(storage) makes it (down to 8 bytes at C = 20 bf16).
// Labels: -100 every fifth, the table's last row, the first and last rows of shard 0 and of
// the last shard, and otherwise random over the whole vocabulary, so mostly other shards'.
//
// Tolerances (origins as in test_cross_entropy_cuda.cpp and test_embedding_cuda.cpp):
// - embedding forward: a copy (or exact zeros), so exact; demb 1e-5 (fp32 sums per id).
// - shard stats (max, sum of exp, target logit, per stat row) and loss: f32 1e-5 (pedantic
//   fp32 GEMM, fp32 statistics); bf16 1e-4 (bf16 products exact in fp32, only the tensor
//   cores' accumulation order differs; a 10x margin).
// - the fold: it runs the CPU fold's operations in double; lse 1e-13 (CUDA's exp and log
//   are within 2 ulp of glibc's), loss sum 1e-12 (its summation order is the summary's
//   fixed tree, not the CPU's row order: N * 2^-53 ~ 1e-13 at N = 2100).
// - dx, demb: f32 1e-5; bf16 1e-2 (G rounded to bf16 for the GEMMs, dx to bf16 storage).
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

// Rows [begin, end) of the vocabulary.
struct Shard {
  std::int64_t begin, end;
  std::int64_t rows() const { return end - begin; }
};

// `parts` contiguous shards, the first vocab % parts one row longer: V = 1000, 3 parts ->
// [0, 334), [334, 667), [667, 1000) (the rule of vocab_range in parallel/vocab_parallel).
std::vector<Shard> split_vocab(std::int64_t vocab, int parts) {
  std::vector<Shard> shards;
  const std::int64_t base = vocab / parts, extra = vocab % parts;
  std::int64_t begin = 0;
  for (int p = 0; p < parts; ++p) {
    const std::int64_t rows = base + (p < extra ? 1 : 0);
    shards.push_back({begin, begin + rows});
    begin += rows;
  }
  return shards;
}

// (n) i32 host ids or labels in [0, vocab) keyed by `name`; every fifth from the fourth on
// is `every_fifth` (-100 for labels); positions 0, 1, 2 and 4 are the boundary rows of the
// first and last shards.
Tensor random_ids(std::int64_t n, std::int64_t vocab, const std::vector<Shard>& shards,
                  std::int32_t every_fifth, const std::string& name) {
  Tensor ids = Tensor::empty({n}, DType::i32);
  const CounterRng rng(13, name);
  auto* id = ids.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    id[i] = i % 5 == 3 ? every_fifth
                       : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(i),
                                                             static_cast<std::uint64_t>(vocab)));
  struct Boundary {
    std::int64_t position, id;
  };
  const Boundary boundaries[] = {{0, vocab - 1},
                                 {1, shards.front().end - 1},
                                 {2, shards.back().begin},
                                 {4, shards.front().begin}};
  for (const Boundary& b : boundaries)
    if (b.position < n) id[b.position] = static_cast<std::int32_t>(b.id);
  return ids;
}

// A device i32 tensor of the given ids or labels.
Tensor device_ids(std::initializer_list<std::int32_t> values) {
  Tensor ids = Tensor::empty({static_cast<std::int64_t>(values.size())}, DType::i32);
  std::int64_t i = 0;
  for (const std::int32_t v : values) ids.data<std::int32_t>()[i++] = v;
  return ids.to(Device::cuda);
}

struct ShardShape {
  DType dtype;
  std::int64_t vocab;
  int parts;
  std::int64_t rows, columns;  // N, C
};

void PrintTo(const ShardShape& p, std::ostream* os) {
  *os << dtype_name(p.dtype) << " V=" << p.vocab << "/" << p.parts << " N=" << p.rows
      << " C=" << p.columns;
}

std::string shape_name(const ::testing::TestParamInfo<ShardShape>& info) {
  const ShardShape& p = info.param;
  return std::string(dtype_name(p.dtype)) + "_V" + std::to_string(p.vocab) + "_S" +
         std::to_string(p.parts) + "_N" + std::to_string(p.rows) + "_C" +
         std::to_string(p.columns);
}

// A key that makes each shape's random inputs its own.
std::string key(const char* name, const ShardShape& p) {
  return std::string(name) + "/" + std::to_string(p.vocab) + "/" + std::to_string(p.rows) +
         "/" + std::to_string(p.columns);
}

struct Sizes {
  std::int64_t vocab;
  int parts;
  std::int64_t rows, columns;
};

std::vector<ShardShape> with_both_dtypes(std::initializer_list<Sizes> sizes) {
  std::vector<ShardShape> shapes;
  for (const DType dtype : {DType::f32, DType::bf16})
    for (const Sizes& s : sizes) shapes.push_back({dtype, s.vocab, s.parts, s.rows, s.columns});
  return shapes;
}

// ---- embedding ----------------------------------------------------------------------

class EmbeddingShardCuda : public gpu_test::GpuTest,
                           public ::testing::WithParamInterface<ShardShape> {};

TEST_P(EmbeddingShardCuda, MatchesTheCpuReference) {
  const ShardShape& p = GetParam();
  const std::vector<Shard> shards = split_vocab(p.vocab, p.parts);
  // Repeated ids make runs for the backward to walk: id 0 at every fifth position, and
  // random repeats where N > V / S.
  const Tensor ids = random_ids(p.rows, p.vocab, shards, 0, key("ids", p));
  const Tensor emb = random_tensor({p.vocab, p.columns}, key("emb", p), p.dtype);
  const Tensor dout = random_tensor({p.rows, p.columns}, key("dout", p), p.dtype);
  const Tensor demb0 = random_tensor({p.vocab, p.columns}, key("demb0", p), DType::f32);

  const Tensor ids_d = ids.to(Device::cuda);
  const Tensor emb_d = on_device(emb, p.dtype), dout_d = on_device(dout, p.dtype);
  Tensor demb_ref = demb0.to(DType::f64);
  Tensor demb = on_device(demb0, DType::f32), again = on_device(demb0, DType::f32);
  for (const Shard& s : shards) {
    Tensor out_ref = Tensor::empty({p.rows, p.columns}, DType::f64);
    ops::embedding_shard_forward(ids, emb.rows(s.begin, s.end), s.begin, out_ref);
    Tensor out = Tensor::empty({p.rows, p.columns}, p.dtype, Device::cuda);
    ops::embedding_shard_forward(ids_d, emb_d.rows(s.begin, s.end), s.begin, out);
    EXPECT_EQ(relative_error(out, out_ref), 0.0) << "shard at " << s.begin;  // copies and zeros

    Tensor ref_rows = demb_ref.rows(s.begin, s.end);
    ops::embedding_shard_backward(ids, dout, s.begin, ref_rows);
    Tensor rows = demb.rows(s.begin, s.end), rows_again = again.rows(s.begin, s.end);
    ops::embedding_shard_backward(ids_d, dout_d, s.begin, rows);
    ops::embedding_shard_backward(ids_d, dout_d, s.begin, rows_again);
  }
  // Over the whole table: a shard writing outside its rows would show here.
  EXPECT_LT(relative_error(demb, demb_ref), 1e-5);
  EXPECT_EQ(relative_error(again, demb), 0.0);  // deterministic
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingShardCuda,
                         ::testing::ValuesIn(with_both_dtypes({{1000, 3, 515, 13},
                                                               {1000, 3, 37, 200},
                                                               {97, 2, 1, 16},
                                                               {97, 2, 515, 2048}})),
                         shape_name);

// ---- cross-entropy, op by op -----------------------------------------------------------

// The CPU reference of phase 1 and of the fold for one split, in f64: each shard's stats,
// stacked as the all-gather stacks them, and the folded lse and loss.
struct ShardedReference {
  std::vector<Tensor> stats;  // per shard (3, N)
  Tensor all_stats;           // (S * 3, N)
  Tensor lse;                 // (N)
  ops::CrossEntropyResult merged;
};

ShardedReference sharded_reference(const Tensor& x, const Tensor& emb, const Tensor& labels,
                                   const std::vector<Shard>& shards) {
  const std::int64_t n = x.dim(0), k = ops::kShardStatRows;
  ShardedReference ref;
  ref.all_stats = Tensor::empty({k * std::int64_t(shards.size()), n}, DType::f64);
  for (std::size_t s = 0; s < shards.size(); ++s) {
    ref.stats.push_back(Tensor::empty({k, n}, DType::f64));
    ops::cross_entropy_shard_stats(x, emb.rows(shards[s].begin, shards[s].end), shards[s].begin,
                                   labels, ref.stats.back());
    ref.all_stats.rows(k * std::int64_t(s), k * std::int64_t(s + 1)).copy_from(ref.stats.back());
  }
  ref.lse = Tensor::empty({n}, DType::f64);
  ref.merged = ops::merge_cross_entropy_shard_stats(ref.all_stats, labels, ref.lse);
  return ref;
}

// Row `row` of a (3, N) statistics tensor (host or device) as its own (N) tensor.
Tensor stat_row(const Tensor& stats, std::int64_t row) {
  return stats.rows(row, row + 1).view({stats.dim(1)});
}

class CrossEntropyShardCuda : public gpu_test::GpuTest,
                              public ::testing::WithParamInterface<ShardShape> {};

TEST_P(CrossEntropyShardCuda, EveryPhaseMatchesTheCpuReference) {
  const ShardShape& p = GetParam();
  const bool f32 = p.dtype == DType::f32;
  const double stat_tolerance = f32 ? 1e-5 : 1e-4, grad_tolerance = f32 ? 1e-5 : 1e-2;
  const std::vector<Shard> shards = split_vocab(p.vocab, p.parts);
  // Logits of standard deviation ~2: a peaked but not one-hot softmax.
  const Tensor x = random_tensor({p.rows, p.columns}, key("x", p), p.dtype);
  const Tensor emb = random_tensor({p.vocab, p.columns}, key("emb", p), p.dtype, 0.0,
                                   2.0 / std::sqrt(static_cast<double>(p.columns)));
  const Tensor labels = random_ids(p.rows, p.vocab, shards, ops::kIgnoreLabel, key("labels", p));
  const double grad_scale = 1.0 / static_cast<double>(ops::count_valid_labels(labels));
  // Small next to the gradient yet large enough that an overwrite fails (see
  // test_cross_entropy_cuda.cpp).
  const Tensor demb0 =
      random_tensor({p.vocab, p.columns}, key("demb0", p), DType::f32, 0.0, 0.1 * grad_scale);
  const ShardedReference ref = sharded_reference(x, emb, labels, shards);

  const Tensor x_d = on_device(x, p.dtype), emb_d = on_device(emb, p.dtype);
  const Tensor labels_d = labels.to(Device::cuda);
  const Tensor lse_ref_d = ref.lse.to(Device::cuda);
  Tensor demb_ref = demb0.to(DType::f64), demb = on_device(demb0, DType::f32);
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const Shard& shard = shards[s];
    const Tensor emb_shard = emb_d.rows(shard.begin, shard.end);
    Tensor stats = Tensor::empty({ops::kShardStatRows, p.rows}, DType::f64, Device::cuda);
    ops::cross_entropy_shard_stats(x_d, emb_shard, shard.begin, labels_d, stats);
    const Tensor host_stats = stats.to(DType::f64);
    for (std::int64_t row = 0; row < ops::kShardStatRows; ++row)
      EXPECT_LT(relative_error(stat_row(host_stats, row), stat_row(ref.stats[s], row)),
                stat_tolerance)
          << "stat row " << row << " of the shard at " << shard.begin;
    for (std::int64_t i = 0; i < p.rows; ++i) {
      if (ref.stats[s].item(2 * p.rows + i) == 0.0) {  // exact zeros where not held
        EXPECT_EQ(host_stats.item(2 * p.rows + i), 0.0) << "row " << i;
      }
    }

    // Phase 2 from the reference lse, so that only this phase's error is measured.
    Tensor dx_ref = Tensor::empty({p.rows, p.columns}, DType::f64);
    Tensor ref_rows = demb_ref.rows(shard.begin, shard.end);
    ops::cross_entropy_shard_backward(x, emb.rows(shard.begin, shard.end), shard.begin, labels,
                                      ref.lse, grad_scale, &dx_ref, &ref_rows);
    Tensor dx = Tensor::empty({p.rows, p.columns}, p.dtype, Device::cuda);
    Tensor rows = demb.rows(shard.begin, shard.end);
    ops::cross_entropy_shard_backward(x_d, emb_shard, shard.begin, labels_d, lse_ref_d,
                                      grad_scale, &dx, &rows);
    EXPECT_LT(relative_error(dx, dx_ref), grad_tolerance) << "shard at " << shard.begin;
  }
  EXPECT_LT(relative_error(demb, demb_ref), grad_tolerance);  // and nothing outside a shard

  // The fold of the reference statistics.
  Tensor lse = Tensor::empty({p.rows}, DType::f64, Device::cuda);
  const ops::CrossEntropyResult merged =
      ops::merge_cross_entropy_shard_stats(ref.all_stats.to(Device::cuda), labels_d, lse);
  EXPECT_EQ(merged.valid, ref.merged.valid);
  EXPECT_LE(std::abs(merged.loss_sum - ref.merged.loss_sum), 1e-12 * std::abs(ref.merged.loss_sum));
  EXPECT_LT(relative_error(lse, ref.lse), 1e-13);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyShardCuda,
                         ::testing::ValuesIn(with_both_dtypes({{1000, 3, 37, 64},
                                                               {1000, 3, 515, 40},
                                                               {97, 2, 1, 20},
                                                               {97, 2, 37, 20},
                                                               {64000, 2, 2100, 16}})),
                         shape_name);

// ---- cross-entropy, the folded shards against the full head on the GPU -------------------

class CrossEntropyShardsFoldCuda : public gpu_test::GpuTest,
                                   public ::testing::WithParamInterface<ShardShape> {};

// What parallel/vocab_parallel.cpp does across ranks, here in one process: each shard's
// stats stacked in shard order, one fold, each shard's backward; the dx terms summed (in
// f64 on the host, so that the sum adds no rounding of its own).
TEST_P(CrossEntropyShardsFoldCuda, ReproducesTheFullHead) {
  const ShardShape& p = GetParam();
  const bool f32 = p.dtype == DType::f32;
  const double loss_tolerance = f32 ? 1e-5 : 1e-4, grad_tolerance = f32 ? 1e-5 : 1e-2;
  const std::vector<Shard> shards = split_vocab(p.vocab, p.parts);
  const std::int64_t k = ops::kShardStatRows;
  const Tensor x = on_device(random_tensor({p.rows, p.columns}, key("x", p), p.dtype), p.dtype);
  const Tensor emb = on_device(random_tensor({p.vocab, p.columns}, key("emb", p), p.dtype, 0.0,
                                             2.0 / std::sqrt(static_cast<double>(p.columns))),
                               p.dtype);
  const Tensor labels_host =
      random_ids(p.rows, p.vocab, shards, ops::kIgnoreLabel, key("labels", p));
  const Tensor labels = labels_host.to(Device::cuda);
  const double grad_scale = 1.0 / static_cast<double>(ops::count_valid_labels(labels_host));
  const Tensor demb0 =
      random_tensor({p.vocab, p.columns}, key("demb0", p), DType::f32, 0.0, 0.1 * grad_scale);

  Tensor dx_full = Tensor::empty({p.rows, p.columns}, p.dtype, Device::cuda);
  Tensor demb_full = on_device(demb0, DType::f32);
  const ops::CrossEntropyResult full =
      ops::tied_head_cross_entropy(x, emb, labels, grad_scale, &dx_full, &demb_full);

  Tensor all_stats = Tensor::empty({k * p.parts, p.rows}, DType::f64, Device::cuda);
  for (int s = 0; s < p.parts; ++s) {
    Tensor stats = all_stats.rows(k * s, k * (s + 1));
    ops::cross_entropy_shard_stats(x, emb.rows(shards[s].begin, shards[s].end), shards[s].begin,
                                   labels, stats);
  }
  Tensor lse = Tensor::empty({p.rows}, DType::f64, Device::cuda);
  const ops::CrossEntropyResult merged = ops::merge_cross_entropy_shard_stats(all_stats, labels, lse);
  Tensor dx_sum = Tensor::zeros({p.rows, p.columns}, DType::f64);
  Tensor demb = on_device(demb0, DType::f32);
  for (const Shard& shard : shards) {
    Tensor dx_term = Tensor::empty({p.rows, p.columns}, p.dtype, Device::cuda);
    Tensor rows = demb.rows(shard.begin, shard.end);
    ops::cross_entropy_shard_backward(x, emb.rows(shard.begin, shard.end), shard.begin, labels,
                                      lse, grad_scale, &dx_term, &rows);
    ops::add_inplace(dx_sum, dx_term.to(DType::f64));
  }

  EXPECT_EQ(merged.valid, full.valid);
  EXPECT_LT(std::abs(merged.loss_sum - full.loss_sum), loss_tolerance * std::abs(full.loss_sum));
  EXPECT_LT(relative_error(dx_sum, dx_full), grad_tolerance);
  EXPECT_LT(relative_error(demb, demb_full), grad_tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyShardsFoldCuda,
                         ::testing::ValuesIn(with_both_dtypes({{1000, 3, 515, 64},
                                                               {97, 2, 37, 20}})),
                         shape_name);

// ---- errors ---------------------------------------------------------------------------

using VocabShardCudaErrors = gpu_test::GpuTest;

TEST_F(VocabShardCudaErrors, ANegativeIdNamesItselfAndAnIdPastTheShardIsAnotherShards) {
  constexpr std::int64_t kRows = 5, kColumns = 8;
  const Tensor emb_shard =
      on_device(random_tensor({4, kColumns}, "emb", DType::f32), DType::f32);  // ids [10, 14)
  const Tensor dout = Tensor::zeros({kRows, kColumns}, DType::f32, Device::cuda);
  Tensor out = Tensor::empty({kRows, kColumns}, DType::f32, Device::cuda);
  Tensor demb = Tensor::zeros({4, kColumns}, DType::f32, Device::cuda);
  const Tensor bad = device_ids({11, -2, 3, -9, 13});
  const std::string forward = error_of([&] { ops::embedding_shard_forward(bad, emb_shard, 10, out); });
  EXPECT_NE(forward.find("token id -2 at position 1 is outside the vocabulary [0, V)"),
            std::string::npos)
      << forward;
  const std::string backward =
      error_of([&] { ops::embedding_shard_backward(bad, dout, 10, demb); });
  EXPECT_NE(backward.find("token id -2 at position 1 is outside the vocabulary [0, V)"),
            std::string::npos)
      << backward;
  // Ids far past the shard (V is unknown to it) are another shard's: no error, zero rows.
  ops::embedding_shard_forward(device_ids({11, 2000000000, 3, 0, 13}), emb_shard, 10, out);
  EXPECT_EQ(ops::sum_of_squares(out.rows(1, 4)), 0.0);
}

// The shard phases do not synchronise, so they treat a bad label as ignored; the fold,
// which synchronises for the loss, reports it before phase 2 runs.
TEST_F(VocabShardCudaErrors, TheFoldNamesTheFirstBadLabelAndItsPosition) {
  constexpr std::int64_t kRows = 6, kColumns = 8;
  const Tensor x = on_device(random_tensor({kRows, kColumns}, "x", DType::f32), DType::f32);
  const Tensor emb_shard =
      on_device(random_tensor({4, kColumns}, "emb", DType::f32), DType::f32);  // ids [10, 14)
  const Tensor labels = device_ids({11, ops::kIgnoreLabel, 3, -7, 12, -5});
  Tensor stats = Tensor::empty({ops::kShardStatRows, kRows}, DType::f64, Device::cuda);
  ops::cross_entropy_shard_stats(x, emb_shard, 10, labels, stats);
  Tensor lse = Tensor::empty({kRows}, DType::f64, Device::cuda);
  const std::string message =
      error_of([&] { ops::merge_cross_entropy_shard_stats(stats, labels, lse); });
  EXPECT_NE(message.find("label -7 at position 3 is outside the vocabulary [0, V) and is not "
                         "the ignore label -100"),
            std::string::npos)
      << message;

  Tensor stats32 = Tensor::empty({ops::kShardStatRows, kRows}, DType::f32, Device::cuda);
  const std::string dtype_message =
      error_of([&] { ops::cross_entropy_shard_stats(x, emb_shard, 10, labels, stats32); });
  EXPECT_NE(dtype_message.find("stats must be f64 on the cuda"), std::string::npos)
      << dtype_message;
}

}  // namespace
}  // namespace ratrain
