// CUDA carry ops of the gated recurrence (kernels/cuda/gated_scan_carry.cu) against the CPU
// reference (kernels/cpu/gated_scan_carry.cpp) in f64 on the same rounded inputs: the state
// and adjoint summaries, the fold in both orders (over 3- and 5-field summaries, and over
// none), the forward carry and the backward carry.
// Shapes (B, Tc, C): Tc = 1 (15 of a block's 16 row segments empty), 7, 300 and 1037 (no
// multiple of 16); C = 8, 37 and 95 (partial 32-channel tiles) and 200; B up to 3.
// Inputs: gates sigmoid(N(1, 2^2)) rounded to f32 (~0.01 to ~0.999: short and long
// memories); k, v, K, V and the gradients N(0, 1) rounded to the storage type; states,
// adjoints and summaries N(0, 1) rounded to f32.
// Tolerances: the gate product P <= 1 multiplies a carried state, so its absolute error is
// what matters: an fp32 product of Tc gates is within Tc 2^-24 (relative, hence absolute),
// and P underflows to 0 in f32 where f64 still holds ~1e-80 (Tc = 300). Other summary
// fields and fold results (f32 whatever the storage, from exact inputs): 1e-5 relative. Carried
// outputs: f32 storage 1e-5; bf16 storage 1e-2 (the carry is added to a stored value and rounded
// again to 8 mantissa bits, 2^-9 each).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/kernels/kernel_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

struct CarryCase {
  DType dtype;
  std::int64_t batch, rows, channels;
};

std::string label_of(const CarryCase& c) {
  return std::string(dtype_name(c.dtype)) + " (B, Tc, C) = (" + std::to_string(c.batch) + ", " +
         std::to_string(c.rows) + ", " + std::to_string(c.channels) + ")";
}

std::vector<CarryCase> carry_cases() {
  std::vector<CarryCase> cases;
  for (const DType dtype : {DType::f32, DType::bf16}) {
    cases.push_back({dtype, 1, 1, 8});
    cases.push_back({dtype, 2, 7, 37});
    cases.push_back({dtype, 3, 300, 95});
    cases.push_back({dtype, 1, 1037, 200});
  }
  return cases;
}

// (B, Tc, C) gates sigmoid(N(1, 2^2)) as f64 holding f32 values.
Tensor gates(const Shape& shape) {
  Tensor a = random_tensor(shape, "g", DType::f64, 1.0, 2.0);
  double* p = a.data<double>();
  for (std::int64_t i = 0; i < a.numel(); ++i) p[i] = 1.0 / (1.0 + std::exp(-p[i]));
  return a.to(DType::f32).to(DType::f64);
}

// A (F, B, C) summary of Tc rows: the gate product (field 0) within Tc 2^-24 absolute, the
// other fields within 1e-5 relative.
void expect_summary(const Tensor& got, const Tensor& ref, std::int64_t rows, const char* what) {
  const std::int64_t fields = ref.dim(0);
  const Tensor host = got.to(DType::f64);
  const double product = test::max_abs_diff(host.rows(0, 1), ref.rows(0, 1));
  const double rest = relative_error(host.rows(1, fields), ref.rows(1, fields));
  std::printf("[ errors   ] %s: P %.2e (absolute), other fields %.2e\n", what, product, rest);
  EXPECT_LE(product, std::ldexp(static_cast<double>(rows), -24)) << what;
  EXPECT_LT(rest, 1e-5) << what;
}

void expect_close(const Tensor& got, const Tensor& ref, double tolerance, const char* what) {
  const double error = relative_error(got, ref);
  std::printf("[ errors   ] %s %.2e\n", what, error);
  EXPECT_LT(error, tolerance) << what;
}

using GatedScanCarryCuda = gpu_test::GpuTest;

TEST_F(GatedScanCarryCuda, MatchesTheCpuReference) {
  for (const CarryCase& c : carry_cases()) {
    SCOPED_TRACE(label_of(c));
    std::printf("[ case     ] %s\n", label_of(c).c_str());
    const Shape chunk = {c.batch, c.rows, c.channels}, pair = {2, c.batch, c.channels};
    const double tolerance = c.dtype == DType::f32 ? 1e-5 : 1e-2;
    const auto stored = [&](const char* name) { return random_tensor(chunk, name, c.dtype); };
    const auto f32 = [&](const Shape& shape, const char* name) {
      return random_tensor(shape, name, DType::f32);
    };
    const auto device = [&](const Tensor& host) { return on_device(host, c.dtype); };
    const auto device_f32 = [&](const Tensor& host) { return on_device(host, DType::f32); };
    const auto ref_of = [](const Tensor& host) { return host.to(DType::f64); };  // a copy

    const Tensor gate = gates(chunk), k = stored("k"), v = stored("v"), K = stored("K"),
                 V = stored("V"), dK = stored("dK"), dV = stored("dV"), dg = stored("dg"),
                 dk = stored("dk"), dv = stored("dv");
    const Tensor state = f32(pair, "state"), adjoint = f32(pair, "adjoint");
    const Tensor gate_d = device_f32(gate), K_d = device(K), V_d = device(V);

    // Summaries.
    const Shape three = {ops::kStateSummaryFields, c.batch, c.channels};
    const Shape five = {ops::kAdjointSummaryFields, c.batch, c.channels};
    Tensor state_ref = Tensor::empty(three, DType::f64);
    Tensor state_got = Tensor::empty(three, DType::f32, Device::cuda);
    ops::gated_scan_state_summary(gate, K, V, state_ref);
    ops::gated_scan_state_summary(gate_d, K_d, V_d, state_got);
    expect_summary(state_got, state_ref, c.rows, "state summary");
    Tensor adjoint_ref = Tensor::empty(five, DType::f64);
    Tensor adjoint_got = Tensor::empty(five, DType::f32, Device::cuda);
    ops::gated_scan_adjoint_summary(gate, dK, dV, K, V, adjoint_ref);
    ops::gated_scan_adjoint_summary(gate_d, device(dK), device(dV), K_d, V_d, adjoint_got);
    expect_summary(adjoint_got, adjoint_ref, c.rows, "adjoint summary");

    // Folds of three chunks' maps, and of none.
    struct FoldCase {
      Shape shape;
      ops::FoldOrder order;
      const char* what;
    };
    const FoldCase folds[] = {{{3, ops::kStateSummaryFields, c.batch, c.channels},
                               ops::FoldOrder::first_to_last,
                               "fold of 3-field summaries, first to last"},
                              {{3, ops::kAdjointSummaryFields, c.batch, c.channels},
                               ops::FoldOrder::last_to_first,
                               "fold of 5-field summaries, last to first"},
                              {{0, ops::kStateSummaryFields, c.batch, c.channels},
                               ops::FoldOrder::first_to_last,
                               "fold of no summaries"}};
    for (const FoldCase& f : folds) {
      const Tensor summaries = f32(f.shape, "summaries");
      Tensor ref = Tensor::empty(pair, DType::f64);
      Tensor got = Tensor::empty(pair, DType::f32, Device::cuda);
      ops::gated_scan_fold(summaries, f.order, ref);
      ops::gated_scan_fold(device_f32(summaries), f.order, got);
      expect_close(got, ref, 1e-5, f.what);
    }

    // The forward carry, in place.
    Tensor K_ref = ref_of(K), V_ref = ref_of(V), K_got = device(K), V_got = device(V);
    ops::gated_scan_apply_carry(gate, state, K_ref, V_ref);
    ops::gated_scan_apply_carry(gate_d, device_f32(state), K_got, V_got);
    expect_close(K_got, K_ref, tolerance, "apply carry: K");
    expect_close(V_got, V_ref, tolerance, "apply carry: V");

    // The backward carry, in place.
    Tensor dg_ref = ref_of(dg), dk_ref = ref_of(dk), dv_ref = ref_of(dv);
    Tensor dg_got = device(dg), dk_got = device(dk), dv_got = device(dv);
    ops::gated_scan_carry_backward(gate, k, v, K, V, state, adjoint, dg_ref, dk_ref, dv_ref);
    ops::gated_scan_carry_backward(gate_d, device(k), device(v), K_d, V_d, device_f32(state),
                                   device_f32(adjoint), dg_got, dk_got, dv_got);
    expect_close(dg_got, dg_ref, tolerance, "carry backward: dg");
    expect_close(dk_got, dk_ref, tolerance, "carry backward: dk");
    expect_close(dv_got, dv_ref, tolerance, "carry backward: dv");
  }
}

}  // namespace
}  // namespace ratrain
