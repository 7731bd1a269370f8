// Measured GEMM rate (see gemm_rate.hpp).
#include "launch/gemm_rate.hpp"

#include <chrono>

#include "kernels/ops.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

// An (n, n) tensor of values in [-0.5, 0.5) from a multiplicative hash: cheap to make.
Tensor hashed_matrix(std::int64_t n, DType dtype, Device device) {
  Tensor host = Tensor::empty({n, n}, DType::f32);
  float* out = host.data<float>();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n * n; ++i)
    out[i] = static_cast<float>((static_cast<std::uint64_t>(i) * 2654435761u) % 1024u) / 1024.0f - 0.5f;
  Tensor t = Tensor::empty({n, n}, dtype, device);
  t.copy_from(host);
  return t;
}

}  // namespace

double measured_gemm_rate(DType dtype, Device device, std::int64_t n, int reps) {
  const Tensor x = hashed_matrix(n, dtype, device), w = hashed_matrix(n, dtype, device);
  Tensor y = Tensor::empty({n, n}, dtype, device);
  for (int i = 0; i < 3; ++i) ops::linear_forward(x, w, y);
  synchronize_device();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) ops::linear_forward(x, w, y);
  synchronize_device();
  return 2.0 * double(n) * double(n) * double(n) * reps / seconds_since(start);
}

}  // namespace ratrain
