// CUDA element-wise ops (output gate, exact GELU, residual add; forward and backward)
// against the CPU reference in f64 on the same rounded inputs. Sizes: 1, one partial
// block (1000), and 2,000,003 (beyond 4096 blocks x 256 threads: the grid-stride loop).
// Tolerances: f32 1e-5 (fast __expf: a few ulp); bf16 1e-2 (outputs rounded to 8 bits).
#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

class ElementwiseCuda : public gpu_test::GpuTest,
                        public ::testing::WithParamInterface<std::tuple<DType, std::int64_t>> {
 protected:
  DType dtype() const { return std::get<0>(GetParam()); }
  std::int64_t n() const { return std::get<1>(GetParam()); }
  double tolerance() const { return dtype() == DType::f32 ? 1e-5 : 1e-2; }
  Tensor input(const char* name) const { return random_tensor({n()}, name, dtype(), 0.0, 2.0); }
  Tensor device_like() const { return Tensor::empty({n()}, dtype(), Device::cuda); }
  static Tensor host_like(const Tensor& t) { return Tensor::empty(t.shape(), DType::f64); }
};

TEST_P(ElementwiseCuda, OutputGate) {
  const Tensor attn = input("attn"), o = input("o"), dy = input("dy");
  Tensor y_ref = host_like(attn), da_ref = host_like(attn), do_ref = host_like(attn);
  ops::output_gate_forward(attn, o, y_ref);
  ops::output_gate_backward(attn, o, dy, da_ref, do_ref);
  Tensor y = device_like(), da = device_like(), d_o = device_like();
  const Tensor attn_d = on_device(attn, dtype()), o_d = on_device(o, dtype());
  ops::output_gate_forward(attn_d, o_d, y);
  ops::output_gate_backward(attn_d, o_d, on_device(dy, dtype()), da, d_o);
  EXPECT_LT(relative_error(y, y_ref), tolerance());
  EXPECT_LT(relative_error(da, da_ref), tolerance());
  EXPECT_LT(relative_error(d_o, do_ref), tolerance());
}

TEST_P(ElementwiseCuda, Gelu) {
  const Tensor x = input("x"), dy = input("dy");
  Tensor y_ref = host_like(x), dx_ref = host_like(x);
  ops::gelu_forward(x, y_ref);
  ops::gelu_backward(x, dy, dx_ref);
  Tensor y = device_like(), dx = device_like();
  const Tensor x_d = on_device(x, dtype());
  ops::gelu_forward(x_d, y);
  ops::gelu_backward(x_d, on_device(dy, dtype()), dx);
  EXPECT_LT(relative_error(y, y_ref), tolerance());
  EXPECT_LT(relative_error(dx, dx_ref), tolerance());
}

TEST_P(ElementwiseCuda, AddInPlace) {
  const Tensor acc = input("acc"), x = input("x");
  Tensor ref = acc.to(DType::f64);
  ops::add_inplace(ref, x);
  Tensor acc_d = on_device(acc, dtype());
  ops::add_inplace(acc_d, on_device(x, dtype()));
  EXPECT_LT(relative_error(acc_d, ref), tolerance());
}

std::string case_name(const ::testing::TestParamInfo<ElementwiseCuda::ParamType>& info) {
  return std::string(dtype_name(std::get<0>(info.param))) + "_n" +
         std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Sizes, ElementwiseCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::Values(1, 1000, 2000003)),
                         case_name);

}  // namespace
}  // namespace ratrain
