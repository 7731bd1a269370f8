// Sequence-parallel attention under mpiexec (np 2, 3, 4 and the singleton; 3 is the ring
// with an odd number of ranks, whose send/recv order is the delicate one): every rank
// builds the same whole-sequence q, k, v, dout (fixed seed), computes the single-process
// reference over the whole sequence, runs sp_attention_forward / _backward on its rows
// and compares its rows of out, lse, dq, dk, dv. B = 2, H = 3, dh = 8, Tc = 12 (not a
// power of two), T = S Tc. The rules put windows and prefixes across chunk boundaries
// and beyond one chunk. With np 4 the sp group of a (sp 2, dp 2) layout runs too. Both
// splits (parallel/sequence_split.hpp): contiguous for every rule, zigzag (chunks r and
// 2S - 1 - r of 6 positions, operands piece-major) for the dense rule through
// sp_attention_* and for every rule through the ring itself, which applies any rule by
// position and so also checks its skipping of pieces under the zigzag split.
//
// Tolerances: f64 1e-12, the two differ only in summation order. f32 1e-5 against the
// f64 reference on the same f32-rounded inputs: values are O(1), outputs and merges are
// rounded to f32 and dk, dv sum up to 48 query terms in f32; the largest difference
// measured at np 4 is 9e-7.
//
// Built again for the GPU (tests/gpu/mpi): the chunk's tensors on the rank's GPU (f32, lse
// f32), keys and gradients through NCCL, the same f64 CPU reference.
//
// The plan of the dilated regime is checked as pure arithmetic: its key set is exactly
// the union of what the chunk's queries see, and a rank receives about T/D + W + P keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "parallel/dilated_key_plan.hpp"
#include "parallel/parallel_context.hpp"
#include "parallel/sequence_attention.hpp"
#include "parallel/sequence_split.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/unit/error_test_util.hpp"
#include "tests/unit/kernels/kernel_test_util.hpp"

namespace ratrain {
namespace {

constexpr std::int64_t kBatch = 2, kHeads = 3, kDh = 8, kChunk = 12;

struct RuleCase {
  const char* name;
  Sparsity rule;
};
const RuleCase kRules[] = {
    {"dense", Sparsity::dense()},
    {"dilated D=4 W=0 P=0", {4, 0, 0}},
    {"dilated D=4 W=5 P=0 (window across a chunk boundary)", {4, 5, 0}},
    {"dilated D=4 W=Tc+3 P=0 (window beyond a chunk)", {4, kChunk + 3, 0}},
    {"dilated D=3 W=2 P=Tc+2 (prefix beyond a chunk)", {3, 2, kChunk + 2}},
    {"local only D=-1 W=7 P=2", {-1, 7, 2}},
};

double tolerance(DType dtype) { return dtype == DType::f64 ? 1e-12 : 1e-5; }

// Positions [begin, end) along T of a (B, T, H, dh) tensor, as a new tensor.
Tensor chunk_rows(const Tensor& t, std::int64_t begin, std::int64_t end) {
  const std::int64_t row = t.dim(2) * t.dim(3);
  Tensor chunk = Tensor::empty({t.dim(0), end - begin, t.dim(2), t.dim(3)}, DType::f64);
  for (std::int64_t b = 0; b < t.dim(0); ++b)
    for (std::int64_t i = 0; i < (end - begin) * row; ++i)
      chunk.data<double>()[b * (end - begin) * row + i] = t.item((b * t.dim(1) + begin) * row + i);
  return chunk.to(t.dtype());
}

// Positions [begin, end) along T of a (B, H, T) tensor, as a new tensor.
Tensor chunk_lse(const Tensor& lse, std::int64_t begin, std::int64_t end) {
  Tensor chunk = Tensor::empty({lse.dim(0), lse.dim(1), end - begin}, DType::f64);
  for (std::int64_t bh = 0; bh < lse.dim(0) * lse.dim(1); ++bh)
    for (std::int64_t t = begin; t < end; ++t)
      chunk.data<double>()[bh * (end - begin) + t - begin] = lse.item(bh * lse.dim(2) + t);
  return chunk.to(lse.dtype());
}

// The whole sequence's inputs (rounded to `dtype`, held in f64) and its f64 reference.
struct Reference {
  Tensor q, k, v, dout, out, lse, dq, dk, dv;
};
Reference reference(const Sparsity& rule, std::int64_t seq, DType dtype) {
  const Shape shape{kBatch, seq, kHeads, kDh};
  auto input = [&](const char* name) {
    return test::random_tensor(shape, name, 1.0, dtype).to(DType::f64);
  };
  Reference r{input("q"), input("k"), input("v"), input("dout"),
              Tensor::empty(shape, DType::f64), Tensor::empty({kBatch, kHeads, seq}, DType::f64),
              Tensor::empty(shape, DType::f64), Tensor::empty(shape, DType::f64),
              Tensor::empty(shape, DType::f64)};
  ops::attention_forward(r.q, r.k, r.v, rule, r.out, r.lse);
  ops::attention_backward(r.q, r.k, r.v, r.out, r.lse, r.dout, rule, r.dq, r.dk, r.dv);
  return r;
}

using ForwardFn = void (*)(const Group&, SequenceSplit, const Tensor&, const Tensor&,
                           const Tensor&, const Sparsity&, Tensor&, Tensor&);
using BackwardFn = void (*)(const Group&, SequenceSplit, const Tensor&, const Tensor&,
                            const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                            const Sparsity&, Tensor&, Tensor&, Tensor&);

// This rank's pieces of a whole-sequence tensor, piece-major along the batch: `rows` cuts
// positions [begin, end) of one piece (chunk_rows or chunk_lse).
template <typename Rows>
Tensor piece_major(const Tensor& whole, const SequencePieces& pieces, Rows rows) {
  std::vector<Tensor> parts;
  for (int i = 0; i < pieces.count; ++i)
    parts.push_back(rows(whole, pieces.begin(i), pieces.begin(i) + pieces.length));
  Shape shape = parts.front().shape();
  shape[0] *= pieces.count;
  Tensor out = Tensor::empty(shape, whole.dtype());
  for (int i = 0; i < pieces.count; ++i)
    out.rows(i * kBatch, (i + 1) * kBatch).copy_from(parts[static_cast<std::size_t>(i)]);
  return out;
}

// Runs forward and backward on this rank's pieces under `split` and compares with the
// reference rows.
void expect_chunk_matches(const Group& sp, SequenceSplit split, const Sparsity& rule, DType dtype,
                          ForwardFn forward, BackwardFn backward, const std::string& label) {
  const std::int64_t seq = sp.size() * kChunk;
  const SequencePieces pieces(split, sp.rank(), sp.size(), kChunk);
  const Reference ref = reference(rule, seq, dtype);
  const auto rows = [&](const Tensor& whole) { return piece_major(whole, pieces, chunk_rows); };
  const auto lse_rows = [&](const Tensor& whole) { return piece_major(whole, pieces, chunk_lse); };
  auto mine = [&](const Tensor& whole) { return rows(whole).to(dtype).to(kTestDevice); };
  const Tensor q = mine(ref.q), k = mine(ref.k), v = mine(ref.v), dout = mine(ref.dout);
  Tensor out = Tensor::empty(q.shape(), dtype, kTestDevice);
  Tensor lse = Tensor::empty({pieces.count * kBatch, kHeads, pieces.length}, dtype, kTestDevice);
  Tensor dq = Tensor::empty(q.shape(), dtype, kTestDevice),
         dk = Tensor::empty(q.shape(), dtype, kTestDevice),
         dv = Tensor::empty(q.shape(), dtype, kTestDevice);
  forward(sp, split, q, k, v, rule, out, lse);
  backward(sp, split, q, k, v, out, lse, dout, rule, dq, dk, dv);
  const std::string where = label + ", " + std::string(sequence_split_name(split)) + ", " +
                            std::string(dtype_name(dtype)) + ", rank " +
                            std::to_string(sp.rank()) + " of " + std::to_string(sp.size());
  const double tol = tolerance(dtype);
  const auto host = [](const Tensor& t) { return t.to(Device::cpu); };
  EXPECT_LT(test::max_abs_diff(host(out), rows(ref.out)), tol) << where << ": out";
  EXPECT_LT(test::max_abs_diff(host(lse), lse_rows(ref.lse)), tol) << where << ": lse";
  EXPECT_LT(test::max_abs_diff(host(dq), rows(ref.dq)), tol) << where << ": dq";
  EXPECT_LT(test::max_abs_diff(host(dk), rows(ref.dk)), tol) << where << ": dk";
  EXPECT_LT(test::max_abs_diff(host(dv), rows(ref.dv)), tol) << where << ": dv";
}

// The sp group over the whole world, and with 4 ranks also the sp groups of a (sp 2,
// dp 2) layout.
std::vector<std::pair<std::string, Group>> sp_groups() {
  const Group world = world_group();
  std::vector<std::pair<std::string, Group>> groups = {
      {"world sp", ParallelContext::create(world, {.sp = world.size()}, kTestDevice).sp}};
  if (world.size() == 4)
    groups.emplace_back("sp of (sp 2, dp 2)",
                        ParallelContext::create(world, {.sp = 2, .dp = 2}, kTestDevice).sp);
  return groups;
}

// The dtypes of the device under test (a GPU stores f32 or bf16).
std::vector<DType> test_dtypes() {
  return kTestDevice == Device::cpu ? std::vector{DType::f64, DType::f32} : std::vector{DType::f32};
}

TEST(SequenceAttention, MatchesSingleProcessRows) {
  if (const std::string why = missing_gpus(); !why.empty()) GTEST_SKIP() << why;
  for (const auto& [group_name, sp] : sp_groups())
    for (const DType dtype : test_dtypes())
      for (const RuleCase& c : kRules) {
        expect_chunk_matches(sp, SequenceSplit::contiguous, c.rule, dtype, sp_attention_forward,
                             sp_attention_backward, group_name + ", " + c.name);
        // Zigzag serves dense passes only (pass_split); a group of one holds one piece.
        if (c.rule.is_dense() && sp.size() > 1)
          expect_chunk_matches(sp, SequenceSplit::zigzag, c.rule, dtype, sp_attention_forward,
                               sp_attention_backward, group_name + ", " + c.name);
      }
}

// Ring attention applies any rule by position; the sparse rules exercise its block
// skipping and merging with partly visible blocks.
TEST(SequenceAttention, RingServesEveryRule) {
  if (const std::string why = missing_gpus(); !why.empty()) GTEST_SKIP() << why;
  const Group sp = sp_groups().front().second;
  for (const SequenceSplit split : {SequenceSplit::contiguous, SequenceSplit::zigzag})
    for (const RuleCase& c : kRules)
      expect_chunk_matches(sp, split, c.rule, test_dtypes().front(), ring_attention_forward,
                           ring_attention_backward, std::string("ring, ") + c.name);
}

// The dilated exchange needs one contiguous chunk per rank: a dilated rule under the
// zigzag split is refused before any exchange.
TEST(SequenceAttention, ZigzagRefusesADilatedRule) {
  const Group sp = world_group();
  if (sp.size() == 1) GTEST_SKIP() << "a group of one holds one piece";
  const Tensor q = Tensor::zeros({2 * kBatch, kChunk / 2, kHeads, kDh}, DType::f64);
  Tensor out = Tensor::empty(q.shape(), DType::f64),
         lse = Tensor::empty({2 * kBatch, kHeads, kChunk / 2}, DType::f64);
  const std::string error = error_of(
      [&] { sp_attention_forward(sp, SequenceSplit::zigzag, q, q, q, {4, 0, 0}, out, lse); });
  EXPECT_NE(error.find("contiguous split"), std::string::npos) << error;
}

TEST(SequenceAttention, DilatedRegimeRefusesTheDenseRule) {
  const Group sp = world_group();
  const Tensor q = Tensor::zeros({kBatch, kChunk, kHeads, kDh}, DType::f64);
  Tensor out = Tensor::empty(q.shape(), DType::f64),
         lse = Tensor::empty({kBatch, kHeads, kChunk}, DType::f64);
  const std::string error =
      error_of([&] { dilated_sp_attention_forward(sp, q, q, q, Sparsity::dense(), out, lse); });
  EXPECT_NE(error.find("ring attention"), std::string::npos) << error;
}

// ---- the dilated plan: pure arithmetic ---------------------------------------------------

std::string describe(const Sparsity& rule, int rank, int ranks, std::int64_t chunk) {
  return "D=" + std::to_string(rule.dilation) + " W=" + std::to_string(rule.window) +
         " P=" + std::to_string(rule.initial) + " rank " + std::to_string(rank) + " of " +
         std::to_string(ranks) + " Tc=" + std::to_string(chunk);
}

TEST(DilatedKeyPlan, IsExactlyTheUnionOfVisibleKeys) {
  for (const int dilation : {-1, 2, 3, 4, 7})
    for (const int window : {0, 1, 5, 13, 40})
      for (const int initial : {0, 2, 14})
        for (const std::int64_t chunk : {5, 12})
          for (const int ranks : {1, 2, 3, 4}) {
            const Sparsity rule{dilation, window, initial};
            for (int rank = 0; rank < ranks; ++rank) {
              const DilatedKeyPlan plan = plan_dilated_keys(rule, rank, ranks, chunk);
              std::vector<std::int64_t> visible;
              for (std::int64_t j = 0; j < (rank + 1) * chunk; ++j)
                for (std::int64_t i = rank * chunk; i < (rank + 1) * chunk; ++i)
                  if (is_visible(rule, i, j)) {
                    visible.push_back(j);
                    break;
                  }
              ASSERT_EQ(plan.positions, visible) << describe(rule, rank, ranks, chunk);
              // The point-to-point part is the prefix and halo, once each.
              std::int64_t exchanged = 0;
              for (int owner = 0; owner < ranks; ++owner)
                exchanged += std::int64_t(exchanged_positions(rule, chunk, owner, rank).size());
              EXPECT_EQ(exchanged, plan.prefix.size() + plan.halo.size())
                  << describe(rule, rank, ranks, chunk);
            }
          }
}

TEST(DilatedKeyPlan, ChunkEndSlotsFollowTheOwnersOrder) {
  for (const int dilation : {2, 3, 4, 7})
    for (const std::int64_t chunk : {5, 6, 12}) {
      const std::int64_t capacity = chunk_end_capacity(dilation, chunk);
      for (int owner = 0; owner < 5; ++owner) {
        const auto ends = chunk_ends_in({owner * chunk, (owner + 1) * chunk}, dilation);
        ASSERT_LE(std::int64_t(ends.size()), capacity) << "D=" << dilation << " Tc=" << chunk;
        for (std::size_t e = 0; e < ends.size(); ++e) {
          const ChunkEndSlot slot = chunk_end_slot(ends[e], dilation, chunk);
          EXPECT_EQ(slot.owner, owner);
          EXPECT_EQ(slot.index, std::int64_t(e)) << "D=" << dilation << " j=" << ends[e];
        }
      }
    }
}

// No rank receives more than its prefix, halo and the chunk ends (padded to one row per
// rank at most): T/D + W + P + S, far below T. Checked for the ranks of this job and,
// as arithmetic, for the last rank of 64.
void expect_few_keys(const Sparsity& rule, int rank, int ranks) {
  const std::int64_t seq = ranks * kChunk;
  const DilatedKeyPlan plan = plan_dilated_keys(rule, rank, ranks, kChunk);
  const std::int64_t chunk_ends = rule.dilation > 1 ? seq / rule.dilation + ranks : 0;
  const std::string where = describe(rule, rank, ranks, kChunk);
  EXPECT_LE(plan.keys_received, rule.initial + rule.window + chunk_ends) << where;
  EXPECT_LE(std::int64_t(plan.positions.size()),
            std::min(seq, rule.initial + rule.window + chunk_ends + kChunk))
      << where;
}

TEST(DilatedKeyPlan, ReceivesAboutTOverDKeys) {
  const Group world = world_group();
  for (const RuleCase& c : kRules) {
    if (c.rule.is_dense()) continue;
    expect_few_keys(c.rule, world.rank(), world.size());
    expect_few_keys(c.rule, 63, 64);
  }
  // T = 768: the last rank assembles 187 chunk ends, a window of 5, 2 prefix keys and its
  // own 12, a quarter of the sequence.
  const DilatedKeyPlan plan = plan_dilated_keys({4, 5, 2}, 63, 64, kChunk);
  EXPECT_EQ(plan.positions.size(), 2u + 187u + 5u + 12u);
}

}  // namespace
}  // namespace ratrain
