// CUDA gated recurrence (kernels/cuda/gated_scan.cu) against the CPU reference in f64 on
// the same rounded inputs, forward then backward, the backward fed with the GPU
// forward's own gate, K and V as in training. Shapes: one row; odd C (the one-channel-
// per-lane path); C not a multiple of the 64-channel tile; T not a multiple of any tile
// length, with more chunks along T (33 to 129) than the 32-deep look-back window, so
// that tiles wait on unresolved predecessors.
// Tolerances: f32 storage 1e-5 (fp32 state; the gate's fast exp is ~1e-7 relative);
// bf16 storage 1e-2 (each output rounded to 8 mantissa bits, 2^-9 relative, and the
// backward restarts its fp32 states from K, V rounded to bf16 at each tile's first row);
// the gate is f32 in both: 1e-6.
// Also: two runs are bitwise identical (the look-back's depth varies with timing, its
// result must not), on problems of 1056 and 2080 tiles, several times what fits at once.
#include <cstdio>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

struct ScanCase {
  DType dtype;
  std::int64_t batch, seq, channels;
};

// gtest prints parameters; the default would dump the struct's bytes, padding included.
void PrintTo(const ScanCase& c, std::ostream* os) {
  *os << dtype_name(c.dtype) << " (" << c.batch << ", " << c.seq << ", " << c.channels << ")";
}

class GatedScanCuda : public gpu_test::GpuTest, public ::testing::WithParamInterface<ScanCase> {};

// "bf16_B1_T4099_C328".
std::string case_name(const ::testing::TestParamInfo<ScanCase>& info) {
  const ScanCase& c = info.param;
  return std::string(dtype_name(c.dtype)) + "_B" + std::to_string(c.batch) + "_T" +
         std::to_string(c.seq) + "_C" + std::to_string(c.channels);
}

TEST_P(GatedScanCuda, MatchesTheCpuReference) {
  const ScanCase c = GetParam();
  const Shape shape = {c.batch, c.seq, c.channels};  // (B, T, C)
  const DType dtype = c.dtype;
  const double tolerance = dtype == DType::f32 ? 1e-5 : 1e-2;
  // g ~ N(1, 2): gates from ~0.01 to ~0.999, short and long memories.
  const Tensor g = random_tensor(shape, "g", dtype, 1.0, 2.0);
  const Tensor k = random_tensor(shape, "k", dtype), v = random_tensor(shape, "v", dtype);
  const Tensor dK = random_tensor(shape, "dK", dtype), dV = random_tensor(shape, "dV", dtype);

  const auto host = [&] { return Tensor::empty(shape, DType::f64); };
  Tensor gate_ref = host(), K_ref = host(), V_ref = host();
  ops::gated_scan_forward(g, k, v, gate_ref, K_ref, V_ref);
  Tensor dg_ref = host(), dk_ref = host(), dv_ref = host();
  ops::gated_scan_backward(gate_ref, k, v, K_ref, V_ref, dK, dV, dg_ref, dk_ref, dv_ref);

  const auto device = [&](DType t) { return Tensor::empty(shape, t, Device::cuda); };
  const Tensor kd = on_device(k, dtype), vd = on_device(v, dtype);
  Tensor gate = device(DType::f32), K = device(dtype), V = device(dtype);
  ops::gated_scan_forward(on_device(g, dtype), kd, vd, gate, K, V);
  Tensor dg = device(dtype), dk = device(dtype), dv = device(dtype);
  ops::gated_scan_backward(gate, kd, vd, K, V, on_device(dK, dtype), on_device(dV, dtype), dg, dk,
                           dv);

  const double errors[] = {relative_error(gate, gate_ref), relative_error(K, K_ref),
                           relative_error(V, V_ref),       relative_error(dg, dg_ref),
                           relative_error(dk, dk_ref),     relative_error(dv, dv_ref)};
  std::printf("[ errors   ] gate %.2e  K %.2e  V %.2e  dg %.2e  dk %.2e  dv %.2e\n", errors[0],
              errors[1], errors[2], errors[3], errors[4], errors[5]);
  EXPECT_LT(errors[0], 1e-6) << "gate";
  EXPECT_LT(errors[1], tolerance) << "K";
  EXPECT_LT(errors[2], tolerance) << "V";
  EXPECT_LT(errors[3], tolerance) << "dg";
  EXPECT_LT(errors[4], tolerance) << "dk";
  EXPECT_LT(errors[5], tolerance) << "dv";
}

// CPU reference time bounds the largest shape: (1, 4099, 328) is 1.3M elements.
INSTANTIATE_TEST_SUITE_P(Shapes, GatedScanCuda,
                         ::testing::Values(ScanCase{DType::f32, 1, 1, 8},
                                           ScanCase{DType::bf16, 1, 1, 8},
                                           ScanCase{DType::f32, 2, 7, 95},
                                           ScanCase{DType::bf16, 2, 7, 95},
                                           ScanCase{DType::f32, 1, 300, 200},
                                           ScanCase{DType::bf16, 1, 300, 200},
                                           ScanCase{DType::f32, 3, 1037, 64},
                                           ScanCase{DType::bf16, 3, 1037, 64},
                                           ScanCase{DType::f32, 1, 4099, 328},
                                           ScanCase{DType::bf16, 1, 4099, 328}),
                         case_name);

// A device tensor's bytes on the host.
std::vector<unsigned char> bytes_of(const Tensor& t) {
  const Tensor h = t.to(Device::cpu);
  const auto* p = static_cast<const unsigned char*>(h.raw());
  return {p, p + h.nbytes()};
}

using GatedScanCudaDeterminism = gpu_test::GpuTest;

TEST_F(GatedScanCudaDeterminism, TwoRunsAreBitwiseIdentical) {
  // bf16 tiles: forward 128 x 64, backward 64 x 64, so 33 x 32 = 1056 and 65 x 32 = 2080
  // tiles. One random tensor serves every input: only repeatability is tested here.
  const Shape shape = {1, 4099, 2048};  // (B, T, C)
  const Tensor x = on_device(random_tensor(shape, "x", DType::bf16, 1.0, 2.0), DType::bf16);
  const auto device = [&](DType t) { return Tensor::empty(shape, t, Device::cuda); };
  std::vector<unsigned char> first[6];
  for (int run = 0; run < 2; ++run) {
    Tensor gate = device(DType::f32), K = device(DType::bf16), V = device(DType::bf16);
    ops::gated_scan_forward(x, x, x, gate, K, V);
    Tensor dg = device(DType::bf16), dk = device(DType::bf16), dv = device(DType::bf16);
    ops::gated_scan_backward(gate, x, x, K, V, x, x, dg, dk, dv);
    const Tensor* outputs[6] = {&gate, &K, &V, &dg, &dk, &dv};
    const char* names[6] = {"gate", "K", "V", "dg", "dk", "dv"};
    for (int i = 0; i < 6; ++i) {
      std::vector<unsigned char> bytes = bytes_of(*outputs[i]);
      if (run == 0)
        first[i] = std::move(bytes);
      else
        EXPECT_TRUE(bytes == first[i]) << names[i] << " differs between two runs";
    }
  }
}

}  // namespace
}  // namespace ratrain
