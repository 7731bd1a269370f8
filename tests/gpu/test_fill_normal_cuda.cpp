// ops::fill_normal on the GPU against the host's draws: the same numbers up to the last
// bits of the device libm (a rare f32 element one ulp apart), for a TP part of 1,000,000+
// elements in f32 and bf16; and a bf16 ParamStore initialised on the GPU holds the f32
// master and the values a host initialisation holds.
#include <cmath>

#include "kernels/ops.hpp"
#include "model/param_store.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using FillNormalCuda = gpu_test::GpuTest;

// Compares `got` (any device, any float dtype) with the host's f64 `expected` rounded to
// got's dtype: every element within one ulp of that dtype, and at most `max_differing`
// elements not equal.
void expect_draws_match(const Tensor& got, const Tensor& expected, std::int64_t max_differing) {
  const Tensor rounded = expected.to(got.dtype()).to(DType::f64);
  const Tensor host = got.to(Device::cpu).to(DType::f64);
  const double ulp = got.dtype() == DType::bf16 ? std::ldexp(1.0, -7) : std::ldexp(1.0, -23);
  std::int64_t differing = 0;
  for (std::int64_t i = 0; i < host.numel(); ++i) {
    const double a = host.item(i), b = rounded.item(i);
    if (a == b) continue;
    ++differing;
    ASSERT_LE(std::abs(a - b), ulp * std::abs(b)) << "element " << i << ": " << a << " vs " << b;
  }
  EXPECT_LE(differing, max_differing) << dtype_name(got.dtype());
}

TEST_F(FillNormalCuda, MatchesTheHostDrawsOfATensorParallelPart) {
  // Rank 2 of 4 of a (3 x 4096, 347) weight cut in 3 segments along dim 0: 1,065,588
  // elements (several grid-stride rounds, not a multiple of any block).
  const PartIndexMap map{.inner = 347, .local_extent = 3 * 1024, .global_extent = 3 * 4096,
                         .segment_extent = 4096, .begin = 2048, .length = 1024};
  const ops::NormalDraw draw{.seed = 1234, .key = stream_key("w"), .std = 0.02};
  Tensor expected = Tensor::empty({3 * 1024, 347}, DType::f64);
  ops::fill_normal(expected, draw, map);
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor got = Tensor::empty(expected.shape(), dtype, Device::cuda);
    ops::fill_normal(got, draw, map);
    expect_draws_match(got, expected, got.numel() / 100000);
  }
}

TEST_F(FillNormalCuda, ParamStoreInitialisesOnTheGpuAsOnTheHost) {
  ParamTable table;
  table.add("embedding.wte.weight", {1000, 96}, InitKind::normal);
  table.add("backbone.ln.weight", {96}, InitKind::ones);
  table.add("backbone.layers.0.seq_layer.in_proj.weight", {5 * 96, 96}, InitKind::normal,
            {.dim = 0, .segments = 5, .begin = 48, .length = 48});
  ParamStore host(table, DType::f64, Device::cpu, 4);
  ParamStore device(table, DType::bf16, Device::cuda, 4);
  host.initialize(9, 0.02);
  device.initialize(9, 0.02);
  ASSERT_TRUE(device.has_master());
  const std::int64_t tolerated = table.total_numel() / 100000;
  expect_draws_match(device.optimizer_values(), host.values(), tolerated);
  expect_draws_match(device.values(), host.values(), tolerated);
  EXPECT_EQ(device.value("backbone.ln.weight").to(Device::cpu).to(DType::f64).item(95), 1.0);
}

}  // namespace
}  // namespace ratrain
