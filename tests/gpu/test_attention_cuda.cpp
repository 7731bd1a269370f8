// CUDA attention forward/backward under the RAT+ visibility rule against the f64 CPU
// reference on the same (rounded) inputs, for dense, dilated and local-only rules and
// the corner cases P >= D, P >= T, W >= T, D > T; shapes (B, T, H, dh) whose T is not a
// multiple of any kernel tile (32, 64, 128). bf16 with dh 64 or 128 runs the tensor-core
// kernels, everything else the CUDA-core ones.
// The backward is fed the reference out (rounded to the storage type) and lse (f32), so
// that its error is its own.
// Tolerances (norm-wise relative, DESIGN.md "Numerics"):
//   f32  1e-5: fp32 dot products and sums over <= 1537 keys (~1e-6 expected).
//   bf16 2e-2: outputs rounded to bf16 (2^-9 relative each) and, on tensor cores, the
//        probabilities P and dS rounded to bf16 before their products.
//   lse  1e-4 absolute in both: an absolute error e in lse is a relative error e in
//        every probability; scores are fp32 sums of exact products of the inputs.
// A host-only test checks the tile decomposition itself (kernels/cuda/attention_rule.cuh)
// against the visibility predicate, so it runs without a GPU too.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cuda/attention_rule.cuh"
#include "kernels/cuda/tile_order.cuh"
#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

struct AttentionCase {
  const char* name;
  Sparsity rule;  // {D, W, P}
  Shape shape;    // (B, T, H, dh)
};

const AttentionCase kCases[] = {
    {"dense_1x1x1x16", Sparsity::dense(), {1, 1, 1, 16}},
    {"dense_2x64x4x16", Sparsity::dense(), {2, 64, 4, 16}},
    {"dense_1x300x2x32", Sparsity::dense(), {1, 300, 2, 32}},
    {"dense_2x1000x3x64", Sparsity::dense(), {2, 1000, 3, 64}},
    {"dense_1x1537x2x128", Sparsity::dense(), {1, 1537, 2, 128}},
    {"dense_2x700x3x128", Sparsity::dense(), {2, 700, 3, 128}},
    {"d4w0p0_1x1x1x16", {4, 0, 0}, {1, 1, 1, 16}},
    {"d4w0p0_2x64x4x16", {4, 0, 0}, {2, 64, 4, 16}},
    {"d4w2p6_1x300x2x32", {4, 2, 6}, {1, 300, 2, 32}},
    {"d8w5p3_2x1000x3x64", {8, 5, 3}, {2, 1000, 3, 64}},
    {"d16w0p0_2x1000x3x64", {16, 0, 0}, {2, 1000, 3, 64}},
    {"d16w0p0_1x1537x2x128", {16, 0, 0}, {1, 1537, 2, 128}},
    {"d64w256p0_1x1537x2x128", {64, 256, 0}, {1, 1537, 2, 128}},
    {"local_w7p2_1x300x2x32", {-1, 7, 2}, {1, 300, 2, 32}},
    {"local_w100p0_1x1537x2x128", {-1, 100, 0}, {1, 1537, 2, 128}},
    {"d4w1p9_PgeD_2x64x4x16", {4, 1, 9}, {2, 64, 4, 16}},
    {"d8w0p400_PgeT_1x300x2x32", {8, 0, 400}, {1, 300, 2, 32}},
    {"d8w5000p0_WgeT_1x300x2x32", {8, 5000, 0}, {1, 300, 2, 32}},
    {"d512w3p0_DgtT_1x300x2x32", {512, 3, 0}, {1, 300, 2, 32}},
    {"d2048w300p5_DgtT_1x1537x2x128", {2048, 300, 5}, {1, 1537, 2, 128}},
    {"d3w2p1_dh256_1x130x1x256", {3, 2, 1}, {1, 130, 1, 256}},
};

// gtest prints parameters in failure messages: the case's name rather than its bytes.
void PrintTo(const AttentionCase& c, std::ostream* os) { *os << c.name; }

class AttentionCuda : public gpu_test::GpuTest,
                      public ::testing::WithParamInterface<std::tuple<DType, AttentionCase>> {};

std::string case_name(const ::testing::TestParamInfo<AttentionCuda::ParamType>& info) {
  const auto& [dtype, c] = info.param;
  return std::string(dtype_name(dtype)) + "_" + c.name;
}

// Largest |a - b| (both read as doubles; `got` may live on the GPU).
double max_abs_error(const Tensor& got, const Tensor& ref) {
  const Tensor a = got.to(DType::f64), b = ref.to(DType::f64);
  double worst = 0;
  for (std::int64_t i = 0; i < b.numel(); ++i) worst = std::max(worst, std::abs(a.item(i) - b.item(i)));
  return worst;
}

TEST_P(AttentionCuda, MatchesTheCpuReference) {
  const auto& [dtype, c] = GetParam();
  const double tolerance = dtype == DType::f32 ? 1e-5 : 2e-2;
  const Shape& shape = c.shape;
  const Shape stat_shape = {shape[0], shape[2], shape[1]};  // (B, H, T)
  const Tensor q = random_tensor(shape, "q", dtype);
  const Tensor k = random_tensor(shape, "k", dtype);
  const Tensor v = random_tensor(shape, "v", dtype);
  const Tensor dout = random_tensor(shape, "dout", dtype);

  // Reference in f64.
  Tensor out_ref = Tensor::empty(shape, DType::f64), lse_ref = Tensor::empty(stat_shape, DType::f64);
  ops::attention_forward(q, k, v, c.rule, out_ref, lse_ref);
  Tensor dq_ref = Tensor::empty(shape, DType::f64), dk_ref = Tensor::empty(shape, DType::f64),
         dv_ref = Tensor::empty(shape, DType::f64);
  ops::attention_backward(q, k, v, out_ref, lse_ref, dout, c.rule, dq_ref, dk_ref, dv_ref);

  const Tensor qd = on_device(q, dtype), kd = on_device(k, dtype), vd = on_device(v, dtype);
  Tensor out = Tensor::empty(shape, dtype, Device::cuda);
  Tensor lse = Tensor::empty(stat_shape, DType::f32, Device::cuda);
  ops::attention_forward(qd, kd, vd, c.rule, out, lse);
  EXPECT_LT(relative_error(out, out_ref), tolerance) << "out";
  EXPECT_LT(max_abs_error(lse, lse_ref), 1e-4) << "lse";

  Tensor dq = Tensor::empty(shape, dtype, Device::cuda), dk = Tensor::empty(shape, dtype, Device::cuda),
         dv = Tensor::empty(shape, dtype, Device::cuda);
  ops::attention_backward(qd, kd, vd, on_device(out_ref, dtype), on_device(lse_ref, DType::f32),
                          on_device(dout, dtype), c.rule, dq, dk, dv);
  EXPECT_LT(relative_error(dq, dq_ref), tolerance) << "dq";
  EXPECT_LT(relative_error(dk, dk_ref), tolerance) << "dk";
  EXPECT_LT(relative_error(dv, dv_ref), tolerance) << "dv";
}

INSTANTIATE_TEST_SUITE_P(Rules, AttentionCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::ValuesIn(kCases)),
                         case_name);

// The kernels' tiling of the rule, on the host: every visible (query, key) pair is
// covered exactly once by the forward's key tiles of its query tile and by the
// backward's query steps of its key tile, and every key has exactly one backward owner.
// Tile sizes as in the kernels (SIMT 32 x 32, MMA forward 128 x 64, backward 64 x 64);
// "unmasked" tiles must contain only visible pairs.
void check_tiling(const Sparsity& rule, int seq, int block_m, int block_n) {
  using cuda::KeySets;
  const KeySets keys = KeySets::of(rule, seq);
  const auto where = [&](int i, int j) {
    return ::testing::Message() << "D = " << rule.dilation << ", W = " << rule.window
                                << ", P = " << rule.initial << ", T = " << seq << ", tiles "
                                << block_m << " x " << block_n << ", query " << i << ", key " << j;
  };
  std::vector<int> count(static_cast<std::size_t>(seq) * seq);
  const auto covered = [&](int i, int j) -> int& { return count[static_cast<std::size_t>(i) * seq + j]; };

  for (int q0 = 0; q0 < seq; q0 += block_m) {
    const int q1 = std::min(q0 + block_m, seq);
    const cuda::QueryTilePlan plan = cuda::QueryTilePlan::of(keys, q0, q1, block_n);
    for (int t = 0; t < plan.tiles; ++t) {
      const cuda::KeyTile tile = plan.tile(t, block_n);
      ASSERT_TRUE(tile.count > 0 && tile.count <= block_n) << where(q0, -1);
      // A global tile is all prefix or all chunk ends: one tensor-map box (tma.cuh).
      ASSERT_TRUE(tile.local || tile.first + tile.count <= keys.prefix || tile.first >= keys.prefix)
          << where(q0, tile.key(keys, 0));
      const bool masked = tile.local || tile.count < block_n || tile.last_key(keys) > q0;
      for (int s = 0; s < tile.count; ++s) {
        const int j = tile.key(keys, s);
        ASSERT_TRUE(j >= 0 && j < seq) << where(q0, j);
        for (int i = q0; i < q1; ++i) covered(i, j) += !masked || keys.visible(tile.local, i, j);
      }
    }
  }
  for (int i = 0; i < seq; ++i)
    for (int j = 0; j < seq; ++j) ASSERT_EQ(covered(i, j), is_visible(rule, i, j) ? 1 : 0) << where(i, j);

  std::fill(count.begin(), count.end(), 0);
  std::vector<int> owners(static_cast<std::size_t>(seq));
  const cuda::BackwardPlan plan = cuda::BackwardPlan::of(keys, block_n);
  for (int t = 0; t < plan.tiles(); ++t) {
    const cuda::KeyTileWork work = plan.work(keys, t, block_n);
    if (work.empty()) continue;
    const cuda::KeyTile& tile = work.keys;
    for (int s = 0; s < tile.count; ++s) {
      const int j = tile.key(keys, s);
      owners[static_cast<std::size_t>(j)] += !(tile.local && keys.is_global(j));
      for (int q0 = work.query_first / block_m * block_m; q0 < work.query_end; q0 += block_m) {
        const bool masked = tile.local || tile.count < block_n || q0 + block_m > seq ||
                            tile.last_key(keys) > q0;
        for (int i = q0; i < std::min(q0 + block_m, seq); ++i)
          covered(i, j) += !masked || keys.visible(tile.local, i, j);
      }
    }
  }
  for (int j = 0; j < seq; ++j) ASSERT_EQ(owners[static_cast<std::size_t>(j)], 1) << where(-1, j);
  for (int i = 0; i < seq; ++i)
    for (int j = 0; j < seq; ++j) ASSERT_EQ(covered(i, j), is_visible(rule, i, j) ? 1 : 0) << where(i, j);
}

// (queries, keys) per tile: SIMT forward and backward, mma.sync forward, mma.sync
// backward, wgmma forward, wgmma backward.
constexpr std::pair<int, int> kTileSizes[] = {{32, 32}, {128, 64}, {64, 64}, {128, 128}, {64, 128}};

TEST(AttentionTiling, CoversEveryVisiblePairOnce) {
  for (const int d : {1, 2, 4, 16, 64, 200, -1})
    for (const int w : {0, 2, 7, 70, 1000})
      for (const int p : {0, 3, 9, 70, 500})
        for (const int seq : {1, 33, 64, 130, 300})
          for (const auto& [block_m, block_n] : kTileSizes) check_tiling({d, w, p}, seq, block_m, block_n);
}

// The per-tile bits of global keys (the mask of local tiles) agree with is_global, for
// tiles starting anywhere, including inside the prefix and before the first chunk end.
TEST(AttentionTiling, GlobalKeyBitsMatchIsGlobal) {
  for (const int d : {2, 3, 16, 64, 200, -1})
    for (const int p : {0, 3, 70, 500})
      for (const int first : {0, 1, 31, 64, 69, 130, 449, 1000}) {
        const auto keys = cuda::KeySets::of({d, 5, p}, 2048);
        const auto bits = cuda::GlobalKeyBits::of(keys, first);
        for (int slot = 0; slot < cuda::GlobalKeyBits::kMaxKeys; ++slot)
          ASSERT_EQ(bits.test(slot), keys.is_global(first + slot))
              << "D=" << d << " P=" << p << " first=" << first << " slot=" << slot;
      }
}

// The launch order hands out every (pair, tile) exactly once. The sectioned tiles come
// first: inside a section the blocks take tile t of every pair of the section before
// tile t + 1, sections in pair order. Then the other tiles in the plain order. Sections
// are the largest power of two of pairs whose bytes fit (30 bytes a pair here).
TEST(AttentionTileOrder, CoversEveryPairAndTileOnceSectionBySection) {
  const auto pow2_floor = [](int n) { int p = 1; while (2 * p <= n) p *= 2; return p; };
  for (const int pairs : {1, 3, 8, 13, 128})
    for (const int tiles : {1, 2, 7, 64})
      for (const int sectioned_tiles : {0, 1, tiles / 2, tiles})
        for (const std::int64_t l2 : {std::int64_t{0}, std::int64_t{1}, std::int64_t{100}, std::int64_t{1} << 40}) {
          const auto order = cuda::TileOrder::sectioned(pairs, tiles, sectioned_tiles, 30, l2);
          const auto where = [&] {
            return ::testing::Message() << "pairs " << pairs << " tiles " << tiles << " sectioned "
                                        << sectioned_tiles << " L2 " << l2;
          };
          const int expected = l2 == 1 ? 1 : l2 == 100 ? std::min(2, pow2_floor(pairs)) : pow2_floor(pairs);
          if (l2 == 0) {
            ASSERT_EQ(order.sectioned_tiles, 0) << where();
          } else {
            ASSERT_EQ(order.section, expected) << where();
          }
          std::vector<int> seen(static_cast<std::size_t>(pairs) * tiles);
          int previous_section = 0, previous_tile = 0;
          for (unsigned b = 0; b < order.blocks(); ++b) {
            const cuda::TileOrder::Item item = order.at(b);
            ASSERT_TRUE(item.bh >= 0 && item.bh < pairs && item.tile >= 0 && item.tile < tiles)
                << where() << " block " << b;
            ++seen[static_cast<std::size_t>(item.bh) * tiles + item.tile];
            const bool in_sections = b < static_cast<unsigned>(pairs * order.sectioned_tiles);
            ASSERT_EQ(in_sections, item.tile < order.sectioned_tiles) << where() << " block " << b;
            // Sections in order, tiles ascending inside one; then tiles ascending, pairs fastest.
            const int section = in_sections ? item.bh / order.section : pairs;
            ASSERT_GE(section, previous_section) << where() << " block " << b;
            if (section == previous_section) {
              ASSERT_GE(item.tile, previous_tile) << where() << " block " << b;
            }
            previous_section = section, previous_tile = item.tile;
          }
          for (const int n : seen) ASSERT_EQ(n, 1) << where();
        }
}

}  // namespace
}  // namespace ratrain
