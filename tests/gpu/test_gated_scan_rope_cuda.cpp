// The recurrence and RoPE in one pass (kernels/cuda/gated_scan.cu, gated_scan_rope_*)
// against the CPU reference in f64 on the same rounded inputs: the scan, then RoPE on q and
// on the recurrent keys, and the mirror image, the backward fed with the GPU forward's own
// gate, K and V as in training. Head dims 64 and 128 take the fused kernel (a tile holds
// 32 channels of each half of a head); 32 and 6 the separate kernels. Position offsets 0
// and 1,000,000 (an angle formed in fp32 there would be ~0.06 rad off). T = 1037 and 4099
// end in partial tiles and have more chunks than the 32-deep look-back window.
// Tolerances as the scan's and RoPE's own tests: f32 storage 1e-5, bf16 1e-2, gate 1e-6.
// Also: the fused kernel equals the separate ones (scan, then RoPE) within one bf16
// rounding, and two runs are bitwise identical.
#include <cstdio>
#include <ostream>
#include <string>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

constexpr double kBase = 10000.0;

struct ScanRopeCase {
  DType dtype;
  std::int64_t batch, seq, heads, head_dim, offset;
};

void PrintTo(const ScanRopeCase& c, std::ostream* os) {
  *os << dtype_name(c.dtype) << " (" << c.batch << ", " << c.seq << ", " << c.heads << ", "
      << c.head_dim << ") at " << c.offset;
}

// "bf16_B2_T1037_H3_dh128_offset1000000".
std::string case_name(const ::testing::TestParamInfo<ScanRopeCase>& info) {
  const ScanRopeCase& c = info.param;
  return std::string(dtype_name(c.dtype)) + "_B" + std::to_string(c.batch) + "_T" +
         std::to_string(c.seq) + "_H" + std::to_string(c.heads) + "_dh" +
         std::to_string(c.head_dim) + "_offset" + std::to_string(c.offset);
}

// The op's operands on one device, in one storage type (the gate f32 on the GPU).
struct Operands {
  Tensor g, k, v, q, dq_rope, dk_rope, dV;
};

struct Outputs {
  Tensor gate, K, V, q_rope, k_rope, dg, dk, dv, dq;

  Outputs(const Shape& shape, DType dtype, Device device) {
    const DType gate_type = device == Device::cuda ? DType::f32 : dtype;
    gate = Tensor::empty(shape, gate_type, device);
    for (Tensor* t : {&K, &V, &q_rope, &k_rope, &dg, &dk, &dv, &dq})
      *t = Tensor::empty(shape, dtype, device);
  }
};

void run_fused(const Operands& in, std::int64_t offset, Outputs& out) {
  ops::gated_scan_rope_forward(in.g, in.k, in.v, in.q, kBase, offset, out.gate, out.K, out.V,
                               out.q_rope, out.k_rope);
  ops::gated_scan_rope_backward(out.gate, in.k, in.v, out.K, out.V, in.dq_rope, in.dk_rope,
                                in.dV, kBase, offset, out.dg, out.dk, out.dv, out.dq);
}

class GatedScanRopeCuda : public gpu_test::GpuTest,
                          public ::testing::WithParamInterface<ScanRopeCase> {};

TEST_P(GatedScanRopeCuda, MatchesTheCpuReference) {
  const ScanRopeCase c = GetParam();
  const Shape shape = {c.batch, c.seq, c.heads, c.head_dim};
  const double tolerance = c.dtype == DType::f32 ? 1e-5 : 1e-2;
  // g ~ N(1, 2): gates from ~0.01 to ~0.999, short and long memories.
  const Operands host{.g = random_tensor(shape, "g", c.dtype, 1.0, 2.0),
                      .k = random_tensor(shape, "k", c.dtype),
                      .v = random_tensor(shape, "v", c.dtype),
                      .q = random_tensor(shape, "q", c.dtype),
                      .dq_rope = random_tensor(shape, "dq_rope", c.dtype),
                      .dk_rope = random_tensor(shape, "dk_rope", c.dtype),
                      .dV = random_tensor(shape, "dV", c.dtype)};
  Outputs ref(shape, DType::f64, Device::cpu);
  run_fused(host, c.offset, ref);

  const auto device = [&](const Tensor& t) { return on_device(t, c.dtype); };
  const Operands gpu{.g = device(host.g), .k = device(host.k), .v = device(host.v),
                     .q = device(host.q), .dq_rope = device(host.dq_rope),
                     .dk_rope = device(host.dk_rope), .dV = device(host.dV)};
  Outputs got(shape, c.dtype, Device::cuda);
  run_fused(gpu, c.offset, got);

  const char* names[] = {"gate", "K", "V", "q_rope", "k_rope", "dg", "dk", "dv", "dq"};
  const Tensor* gots[] = {&got.gate, &got.K, &got.V, &got.q_rope, &got.k_rope,
                          &got.dg,   &got.dk, &got.dv, &got.dq};
  const Tensor* refs[] = {&ref.gate, &ref.K, &ref.V, &ref.q_rope, &ref.k_rope,
                          &ref.dg,   &ref.dk, &ref.dv, &ref.dq};
  std::printf("[ errors   ]");
  for (int i = 0; i < 9; ++i) {
    const double error = relative_error(*gots[i], *refs[i]);
    std::printf(" %s %.2e", names[i], error);
    EXPECT_LT(error, i == 0 ? 1e-6 : tolerance) << names[i];
  }
  std::printf("\n");

  // The separate kernels on the same inputs: the fused one rotates K before rounding it,
  // so in bf16 the two may differ by a rounding; in f32 by the angles' last bits.
  Outputs separate(shape, c.dtype, Device::cuda);
  const Shape seq = {c.batch, c.seq, c.heads * c.head_dim};
  Tensor gate_s = separate.gate.view(seq), K_s = separate.K.view(seq), V_s = separate.V.view(seq);
  ops::gated_scan_forward(gpu.g.view(seq), gpu.k.view(seq), gpu.v.view(seq), gate_s, K_s, V_s);
  ops::rope_forward(gpu.q, kBase, c.offset, separate.q_rope);
  ops::rope_forward(separate.K, kBase, c.offset, separate.k_rope);
  EXPECT_EQ(relative_error(got.K, separate.K), 0.0) << "K";
  const double apart = c.dtype == DType::f32 ? 2e-6 : 4e-3;
  EXPECT_LT(relative_error(got.q_rope, separate.q_rope), apart) << "q_rope";
  EXPECT_LT(relative_error(got.k_rope, separate.k_rope), apart) << "k_rope";
}

// dh 64, 128: the fused kernel; 32, 6: the separate kernels behind the same op.
INSTANTIATE_TEST_SUITE_P(
    Shapes, GatedScanRopeCuda,
    ::testing::Values(ScanRopeCase{DType::f32, 1, 300, 2, 64, 0},
                      ScanRopeCase{DType::bf16, 1, 300, 2, 64, 0},
                      ScanRopeCase{DType::f32, 2, 1037, 3, 128, 1000000},
                      ScanRopeCase{DType::bf16, 2, 1037, 3, 128, 1000000},
                      ScanRopeCase{DType::bf16, 1, 4099, 2, 128, 0},
                      ScanRopeCase{DType::f32, 2, 7, 3, 32, 5},
                      ScanRopeCase{DType::bf16, 1, 65, 2, 6, 0}),
    case_name);

using GatedScanRopeCudaDeterminism = gpu_test::GpuTest;

TEST_F(GatedScanRopeCudaDeterminism, TwoRunsAreBitwiseIdentical) {
  const Shape shape = {1, 4099, 16, 128};  // the 1.5B model's heads at B = 1
  const Tensor x = on_device(random_tensor(shape, "x", DType::bf16, 1.0, 2.0), DType::bf16);
  const Operands in{.g = x, .k = x, .v = x, .q = x, .dq_rope = x, .dk_rope = x, .dV = x};
  Outputs first(shape, DType::bf16, Device::cuda), second(shape, DType::bf16, Device::cuda);
  run_fused(in, 0, first);
  run_fused(in, 0, second);
  const Tensor* a[] = {&first.gate, &first.K,  &first.V,  &first.q_rope, &first.k_rope,
                       &first.dg,   &first.dk, &first.dv, &first.dq};
  const Tensor* b[] = {&second.gate, &second.K,  &second.V,  &second.q_rope, &second.k_rope,
                       &second.dg,   &second.dk, &second.dv, &second.dq};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(relative_error(*a[i], *b[i]), 0.0) << "output " << i;
}

}  // namespace
}  // namespace ratrain
