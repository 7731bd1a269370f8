// Optimizer kernels on flat device buffers: the AdamW step, the sum of squares behind
// the global gradient norm, and in-place scaling (clipping). Same semantics as
// kernels/cpu/adamw.cpp:
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
// AdamW keeps parameters (the fp32 master weights), moments and gradients in f32: the
// update is far below bf16's resolution of a weight. The step constants are formed in
// double on the host. sum_of_squares accumulates in double, per thread then per block,
// over a fixed grid, and the host adds the block sums in order: deterministic.
#include <vector>

#include "kernels/cuda/cuda_ops.hpp"
#include "runtime/cuda_elementwise.cuh"
#include "kernels/cuda/storage.cuh"

namespace ratrain::cuda {
namespace {

struct SumOfSquaresLaunch {
  static constexpr int kThreads = 256;
  static constexpr int kBlocks = 1024;  // fixed, so the summation order never changes
};

struct AdamWStep {
  float *param, *m, *v;
  const float* grad;
  float beta1, beta2, decay, step_size, bias2_sqrt, eps;
  __device__ void operator()(std::int64_t i) const {
    const float g = grad[i];
    const float m_new = beta1 * m[i] + (1.0f - beta1) * g;
    const float v_new = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = m_new;
    v[i] = v_new;
    param[i] = param[i] * decay - step_size * m_new / (sqrtf(v_new) / bias2_sqrt + eps);
  }
};

template <typename T>
struct Scale {
  T* x;
  float factor;
  __device__ void operator()(std::int64_t i) const { x[i] = from_float<T>(to_float(x[i]) * factor); }
};

template <typename T>
__global__ void sum_of_squares_kernel(const T* x, std::int64_t n, double* block_sums) {
  __shared__ double partial[SumOfSquaresLaunch::kThreads];
  double acc = 0;
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{gridDim.x} * blockDim.x) {
    const double value = to_float(x[i]);
    acc += value * value;
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) block_sums[blockIdx.x] = partial[0];
}

}  // namespace

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const ops::AdamWHyper& h,
                  cudaStream_t stream) {
  RT_REQUIRE(param.dtype() == DType::f32, "adamw_update: the CUDA backend keeps parameters, "
             "moments and gradients of the optimizer in f32, got ", dtype_name(param.dtype()));
  const AdamWStep step{.param = ptr<float>(param), .m = ptr<float>(m), .v = ptr<float>(v),
                       .grad = cptr<float>(grad),
                       .beta1 = static_cast<float>(h.beta1), .beta2 = static_cast<float>(h.beta2),
                       .decay = static_cast<float>(1.0 - h.lr * h.weight_decay),
                       .step_size = static_cast<float>(h.lr / (1.0 - std::pow(h.beta1, double(h.step)))),
                       .bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(h.beta2, double(h.step)))),
                       .eps = static_cast<float>(h.eps)};
  launch_elementwise(step, param.numel(), stream);
}

double sum_of_squares(const Tensor& x, cudaStream_t stream) {
  if (x.numel() == 0) return 0.0;
  const Tensor block_sums = Tensor::empty({SumOfSquaresLaunch::kBlocks}, DType::f64, Device::cuda);
  dispatch_storage(x, "sum_of_squares", [&](auto tag) {
    using T = decltype(tag);
    sum_of_squares_kernel<T><<<SumOfSquaresLaunch::kBlocks, SumOfSquaresLaunch::kThreads, 0, stream>>>(
        cptr<T>(x), x.numel(), ptr<double>(block_sums));
    RT_CHECK_LAUNCH();
  });
  const Tensor host = block_sums.to(Device::cpu);  // synchronous copy: orders after the kernel
  double total = 0;
  for (std::int64_t b = 0; b < host.numel(); ++b) total += host.data<double>()[b];
  return total;
}

void scale_inplace(Tensor& x, double factor, cudaStream_t stream) {
  dispatch_storage(x, "scale_inplace", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise(Scale<T>{ptr<T>(x), static_cast<float>(factor)}, x.numel(), stream);
  });
}

}  // namespace ratrain::cuda
