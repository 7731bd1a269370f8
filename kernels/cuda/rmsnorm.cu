// RMSNorm on the GPU: y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) per row.
// x, y, dy, dx (N, C) and w (C) in bf16 or f32; rstd (N) and dw (C) f32; all sums in fp32.
//
// Forward: one block per row; each thread sums squares over a strided slice of the
// row, a block reduction gives rstd, then the same threads write y.
// Backward, with r = rstd of the row and s = sum_k dy_k w_k x_k:
//   dx_c = r w_c dy_c - x_c r^3 s / C          (one block per row, like the forward)
//   dw_c += sum_rows dy_c x_c r                (two passes: each block of the first
//   kernel sums kRowsPerSlab rows per column into an fp32 partial (slabs, C), the
//   second adds the slab partials in a fixed order into dw: deterministic, no atomics)
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

struct RmsNormLaunch {
  static constexpr int kThreads = 256;      // per row block: 8 warps
  static constexpr int kRowsPerSlab = 64;   // rows one dw-partial block reduces
  static constexpr int kColumnsPerBlock = 256;
};

// Sum of `value` over the block (blockDim.x a multiple of 32, at most 1024); every
// thread receives the total.
__device__ float block_sum(float value) {
  __shared__ float warp_sums[32];
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  const int warps = blockDim.x / 32;
  value = lane < warps ? warp_sums[lane] : 0.0f;
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  __syncthreads();  // warp_sums may be reused by the next call
  return value;
}

template <typename T>
__global__ void rmsnorm_forward_kernel(const T* x, const T* w, float eps, T* y, float* rstd,
                                       int columns) {
  const T* row = x + static_cast<std::int64_t>(blockIdx.x) * columns;
  float sum_sq = 0;
  for (int c = threadIdx.x; c < columns; c += blockDim.x) {
    const float v = to_float(row[c]);
    sum_sq += v * v;
  }
  const float r = rsqrtf(block_sum(sum_sq) / columns + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  T* out = y + static_cast<std::int64_t>(blockIdx.x) * columns;
  for (int c = threadIdx.x; c < columns; c += blockDim.x)
    out[c] = from_float<T>(to_float(row[c]) * r * to_float(w[c]));
}

template <typename T>
__global__ void rmsnorm_backward_dx_kernel(const T* x, const T* w, const float* rstd, const T* dy,
                                           T* dx, int columns) {
  const std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * columns;
  const float r = rstd[blockIdx.x];
  float dot = 0;
  for (int c = threadIdx.x; c < columns; c += blockDim.x)
    dot += to_float(dy[base + c]) * to_float(w[c]) * to_float(x[base + c]);
  const float correction = r * r * r * block_sum(dot) / columns;
  // dx may alias dy: every read of dy[base + c] precedes the write of dx[base + c] by the
  // same thread, and block_sum's barrier separates the reduction's reads from the writes.
  for (int c = threadIdx.x; c < columns; c += blockDim.x)
    dx[base + c] = from_float<T>(r * to_float(w[c]) * to_float(dy[base + c]) -
                                 to_float(x[base + c]) * correction);
}

// partial[slab, c] = sum over the slab's rows of dy * x * r.
template <typename T>
__global__ void rmsnorm_dw_partial_kernel(const T* x, const float* rstd, const T* dy,
                                          float* partial, int rows, int columns) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= columns) return;
  const int first = blockIdx.y * RmsNormLaunch::kRowsPerSlab;
  const int last = min(rows, first + RmsNormLaunch::kRowsPerSlab);
  float acc = 0;
  for (int i = first; i < last; ++i) {
    const std::int64_t at = static_cast<std::int64_t>(i) * columns + c;
    acc += to_float(dy[at]) * to_float(x[at]) * rstd[i];
  }
  partial[static_cast<std::int64_t>(blockIdx.y) * columns + c] = acc;
}

__global__ void rmsnorm_dw_accumulate_kernel(const float* partial, float* dw, int slabs,
                                             int columns) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= columns) return;
  float acc = dw[c];
  for (int s = 0; s < slabs; ++s) acc += partial[static_cast<std::int64_t>(s) * columns + c];
  dw[c] = acc;
}

}  // namespace

void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rstd,
                     cudaStream_t stream) {
  const auto rows = static_cast<unsigned>(x.dim(0));
  const auto columns = static_cast<int>(x.dim(1));
  if (rows == 0) return;
  dispatch_storage(x, "rmsnorm_forward", [&](auto tag) {
    using T = decltype(tag);
    rmsnorm_forward_kernel<T><<<rows, RmsNormLaunch::kThreads, 0, stream>>>(
        cptr<T>(x), cptr<T>(w), static_cast<float>(eps), ptr<T>(y), ptr<float>(rstd), columns);
    RT_CHECK_LAUNCH();
  });
}

void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                      Tensor& dx, Tensor& dw, cudaStream_t stream) {
  const auto rows = static_cast<int>(x.dim(0));
  const auto columns = static_cast<int>(x.dim(1));
  if (rows == 0) return;
  const int slabs = (rows + RmsNormLaunch::kRowsPerSlab - 1) / RmsNormLaunch::kRowsPerSlab;
  // (slabs, C) fp32 partial sums of dw; from the caching allocator, so no driver call.
  const Tensor partial = Tensor::empty({slabs, columns}, DType::f32, Device::cuda);
  const dim3 column_blocks((columns + RmsNormLaunch::kColumnsPerBlock - 1) /
                           RmsNormLaunch::kColumnsPerBlock);
  dispatch_storage(x, "rmsnorm_backward", [&](auto tag) {
    using T = decltype(tag);
    // dw first: dx may alias dy.
    rmsnorm_dw_partial_kernel<T><<<dim3(column_blocks.x, slabs), RmsNormLaunch::kColumnsPerBlock,
                                   0, stream>>>(cptr<T>(x), cptr<float>(rstd), cptr<T>(dy),
                                                ptr<float>(partial), rows, columns);
    RT_CHECK_LAUNCH();
    rmsnorm_dw_accumulate_kernel<<<column_blocks, RmsNormLaunch::kColumnsPerBlock, 0, stream>>>(
        cptr<float>(partial), ptr<float>(dw), slabs, columns);
    RT_CHECK_LAUNCH();
    rmsnorm_backward_dx_kernel<T><<<rows, RmsNormLaunch::kThreads, 0, stream>>>(
        cptr<T>(x), cptr<T>(w), cptr<float>(rstd), cptr<T>(dy), ptr<T>(dx), columns);
    RT_CHECK_LAUNCH();
  });
}

}  // namespace ratrain::cuda
