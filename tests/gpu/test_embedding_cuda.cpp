// CUDA embedding forward/backward against the CPU reference in f64 on the same rounded
// inputs: repeated ids (N > V), the table's last row, N and C not multiples of anything
// (C = 13 also exercises the narrow 2- and 4-byte copy words), long runs of one id,
// determinism of demb, and invalid ids.
// Tolerances: the forward is a copy, so exact. demb is f32 in both storage types and is
// a sequential fp32 sum per id: for k terms of unit size the rounding error grows like
// 2^-24 k against a sum of size sqrt(k), i.e. ~3e-6 relative at k = 3000; hence 1e-5.
#include <string>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

constexpr std::int64_t kVocab = 97;
constexpr double kDembTolerance = 1e-5;

// (n) i32 host ids in [0, vocab) keyed by `name`; the last one is vocab - 1 (the table's
// last row).
Tensor random_ids(std::int64_t n, std::int64_t vocab, const std::string& name) {
  Tensor ids = Tensor::empty({n}, DType::i32);
  const CounterRng rng(7, name);
  for (std::int64_t i = 0; i < n; ++i)
    ids.data<std::int32_t>()[i] = static_cast<std::int32_t>(
        rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(vocab)));
  ids.data<std::int32_t>()[n - 1] = static_cast<std::int32_t>(vocab - 1);
  return ids;
}

using EmbeddingShape = std::tuple<DType, std::int64_t, std::int64_t>;  // dtype, N, C

class EmbeddingCuda : public gpu_test::GpuTest,
                      public ::testing::WithParamInterface<EmbeddingShape> {};

TEST_P(EmbeddingCuda, MatchesTheCpuReference) {
  const auto& [dtype, rows, columns] = GetParam();
  const Tensor ids = random_ids(rows, kVocab, "ids");
  const Tensor emb = random_tensor({kVocab, columns}, "emb", dtype);
  const Tensor dout = random_tensor({rows, columns}, "dout", dtype);
  const Tensor demb0 = random_tensor({kVocab, columns}, "demb0", DType::f32);  // demb accumulates

  Tensor out_ref = Tensor::empty({rows, columns}, DType::f64);
  ops::embedding_forward(ids, emb, out_ref);
  Tensor demb_ref = demb0.to(DType::f64);
  ops::embedding_backward(ids, dout, demb_ref);

  const Tensor ids_d = ids.to(Device::cuda);
  Tensor out = Tensor::empty({rows, columns}, dtype, Device::cuda);
  ops::embedding_forward(ids_d, on_device(emb, dtype), out);
  EXPECT_EQ(relative_error(out, out_ref), 0.0);  // a copy

  const Tensor dout_d = on_device(dout, dtype);
  Tensor demb = on_device(demb0, DType::f32);
  ops::embedding_backward(ids_d, dout_d, demb);
  EXPECT_LT(relative_error(demb, demb_ref), kDembTolerance);
  // Deterministic: the same accumulation again gives the same bits.
  Tensor again = on_device(demb0, DType::f32);
  ops::embedding_backward(ids_d, dout_d, again);
  EXPECT_EQ(relative_error(again, demb), 0.0);
}

std::string shape_name(const ::testing::TestParamInfo<EmbeddingShape>& info) {
  const auto& [dtype, rows, columns] = info.param;
  return std::string(dtype_name(dtype)) + "_rows" + std::to_string(rows) + "_cols" +
         std::to_string(columns);
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::Values(1, 515),
                                            ::testing::Values(13, 16, 200, 2048)),
                         shape_name);

using EmbeddingCudaLongRun = gpu_test::GpuTest;

// Runs are read 128 entries at a time: a run of exactly two chunks (id 3), then one of
// 2745 entries (the last id).
TEST_F(EmbeddingCudaLongRun, OneIdRepeatedThousandsOfTimes) {
  constexpr std::int64_t kRows = 3001, kColumns = 40, kShortRun = 256;
  Tensor ids = Tensor::empty({kRows}, DType::i32);
  for (std::int64_t i = 0; i < kRows; ++i)
    ids.data<std::int32_t>()[i] = i < kShortRun ? 3 : static_cast<std::int32_t>(kVocab - 1);
  const Tensor dout = random_tensor({kRows, kColumns}, "dout", DType::f32);
  const Tensor demb0 = random_tensor({kVocab, kColumns}, "demb0", DType::f32);
  Tensor demb_ref = demb0.to(DType::f64);
  ops::embedding_backward(ids, dout, demb_ref);

  Tensor demb = on_device(demb0, DType::f32);
  ops::embedding_backward(ids.to(Device::cuda), on_device(dout, DType::f32), demb);
  EXPECT_LT(relative_error(demb, demb_ref), kDembTolerance);
}

using EmbeddingCudaErrors = gpu_test::GpuTest;

TEST_F(EmbeddingCudaErrors, AnIdOutsideTheVocabularyNamesTheFirstBadIdAndItsPosition) {
  constexpr std::int64_t kRows = 50, kColumns = 16;
  const Tensor emb = on_device(random_tensor({kVocab, kColumns}, "emb", DType::f32), DType::f32);
  const Tensor dout = Tensor::zeros({kRows, kColumns}, DType::f32, Device::cuda);
  Tensor out = Tensor::empty({kRows, kColumns}, DType::f32, Device::cuda);
  Tensor demb = Tensor::zeros({kVocab, kColumns}, DType::f32, Device::cuda);
  // Two bad ids each time; the message names the one at the smaller position.
  struct Case {
    std::int64_t first_position;
    std::int32_t first_id;
    std::int64_t second_position;
    std::int32_t second_id;
    std::string expected;
  };
  const Case cases[] = {{7, kVocab, 30, -1, "token id 97 at position 7"},
                        {4, -5, 9, kVocab + 3, "token id -5 at position 4"}};
  for (const Case& c : cases) {
    Tensor ids = random_ids(kRows, kVocab, "ids");
    ids.data<std::int32_t>()[c.first_position] = c.first_id;
    ids.data<std::int32_t>()[c.second_position] = c.second_id;
    const Tensor ids_d = ids.to(Device::cuda);
    const std::string forward = error_of([&] { ops::embedding_forward(ids_d, emb, out); });
    EXPECT_NE(forward.find(c.expected), std::string::npos) << forward;
    const std::string backward = error_of([&] { ops::embedding_backward(ids_d, dout, demb); });
    EXPECT_NE(backward.find(c.expected), std::string::npos) << backward;
  }
}

}  // namespace
}  // namespace ratrain
