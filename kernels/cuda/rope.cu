// Rotary position embedding on the GPU, rotate-half convention (RATPLUS.md step 5; the
// CPU reference is kernels/cpu/rope.cpp). x, y, dy, dx: (B, T, H, dh) in bf16 or f32, dh
// even, half = dh / 2. For p = position_offset + t and c < half, theta = p base^(-2c/dh):
//   y[c] = x[c] cos - x[c + half] sin,   y[c + half] = x[c + half] cos + x[c] sin;
// backward applies the transpose, the rotation by -theta (a sign on sin).
//
// Angles. Positions reach 1M+ in long-context runs, where fp32 p * inv_freq is ~0.06 rad
// off; theta is formed and reduced modulo 2 pi in double, and only the reduced angle
// (|r| <= pi) goes to fp32 sincosf: ~1e-7 absolute error at any position below 2^53.
//
// Work. A block covers `positions` consecutive t for every (b, h): it tabulates the
// positions x half cos/sin pairs in shared memory first (each angle is computed once and
// serves B H rows), then rotates. A work item is kVec channel pairs of one (b, t, h): one
// vector load from each half. Consecutive threads take consecutive items, so a warp reads
// whole runs of a head's halves.
//
// In place (y == x) is safe: each element is read and written by the same thread, read
// first; the kernel takes no __restrict__ pointers.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

struct RopeLaunch {
  static constexpr int kThreads = 256;
  // Items per block: enough that each angle serves many rows, few enough for several
  // blocks per SM (1.5B, B = 1, T = 4096, H = 16, dh = 128, bf16: 8 positions, 512 blocks).
  static constexpr int kItemsPerBlock = 4 * kThreads;
  static constexpr int kMaxAngles = 2048;               // table entries: 16 KB of cos and sin
  static constexpr int kMaxHalf = kMaxAngles;           // inverse frequencies: 16 KB of double
};

struct RopeShape {
  int batch;
  std::int64_t seq;
  int heads;
  int half;       // dh / 2
  int positions;  // consecutive t per block
};

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

// Shared-memory layout of a block: inverse frequencies (half) in double, then cos and
// sin (positions, half) in fp32. half * 8 bytes keeps the fp32 tables kVec-aligned.
std::size_t table_bytes(const RopeShape& s) {
  return sizeof(double) * s.half + 2 * sizeof(float) * std::size_t(s.positions) * s.half;
}

// sign = +1 (forward) or -1 (backward).
template <typename S, int kVec>
__global__ void __launch_bounds__(RopeLaunch::kThreads)
    rope_kernel(const S* x, S* y, const RopeShape shape, std::int64_t position_offset,
                double log2_base, float sign) {
  extern __shared__ __align__(16) double shared[];
  const int half = shape.half;
  double* inv_freq = shared;                                   // (half)
  float* cos_t = reinterpret_cast<float*>(shared + half);      // (positions, half)
  float* sin_t = cos_t + std::size_t(shape.positions) * half;  // (positions, half)
  const std::int64_t t0 = std::int64_t{blockIdx.x} * shape.positions;
  const int count = static_cast<int>(min(std::int64_t{shape.positions}, shape.seq - t0));

  for (int c = threadIdx.x; c < half; c += blockDim.x)
    inv_freq[c] = exp2(-static_cast<double>(2 * c) / (2 * half) * log2_base);  // base^(-2c/dh)
  __syncthreads();
  constexpr double kTwoPi = 6.283185307179586477;
  for (int j = threadIdx.x; j < count * half; j += blockDim.x) {
    const double theta = static_cast<double>(position_offset + t0 + j / half) * inv_freq[j % half];
    const double reduced = fma(-rint(theta * (1.0 / kTwoPi)), kTwoPi, theta);  // |reduced| <= pi
    float s, c;
    sincosf(static_cast<float>(reduced), &s, &c);
    cos_t[j] = c;
    sin_t[j] = sign * s;
  }
  __syncthreads();

  // Item i: group g (fastest), head h, position t0 + tl, batch b (slowest).
  const int groups = half / kVec;
  const int row_items = shape.heads * groups;  // items of one (b, t)
  const int items = count * shape.batch * row_items;
  for (int i = threadIdx.x; i < items; i += blockDim.x) {
    const int within = i % row_items, row = i / row_items;
    const int h = within / groups, c0 = (within % groups) * kVec;
    const int tl = row % count, b = row / count;
    const std::int64_t row_start = (std::int64_t{b} * shape.seq + t0 + tl) * shape.heads + h;
    const std::int64_t at = row_start * (2 * half) + c0;
    const Vec<S, kVec> lo = *reinterpret_cast<const Vec<S, kVec>*>(x + at);
    const Vec<S, kVec> hi = *reinterpret_cast<const Vec<S, kVec>*>(x + at + half);
    const Vec<float, kVec> co = *reinterpret_cast<const Vec<float, kVec>*>(cos_t + tl * half + c0);
    const Vec<float, kVec> si = *reinterpret_cast<const Vec<float, kVec>*>(sin_t + tl * half + c0);
    Vec<S, kVec> lo_out, hi_out;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const float l = to_float(lo.v[e]), u = to_float(hi.v[e]);
      lo_out.v[e] = from_float<S>(l * co.v[e] - u * si.v[e]);
      hi_out.v[e] = from_float<S>(u * co.v[e] + l * si.v[e]);
    }
    *reinterpret_cast<Vec<S, kVec>*>(y + at) = lo_out;
    *reinterpret_cast<Vec<S, kVec>*>(y + at + half) = hi_out;
  }
}

bool aligned(const Tensor& t, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(t.raw()) % bytes == 0;
}

template <typename S, int kVec>
void launch(const Tensor& x, Tensor& y, RopeShape shape, std::int64_t position_offset,
            double base, float sign, cudaStream_t stream) {
  // Enough positions per block that an angle serves many items, within the table
  // (half <= kMaxHalf = kMaxAngles, so the table takes at least one position).
  const std::int64_t items_per_position =
      std::int64_t{shape.batch} * shape.heads * (shape.half / kVec);
  const std::int64_t by_items = RopeLaunch::kItemsPerBlock / items_per_position;
  const std::int64_t by_table = RopeLaunch::kMaxAngles / shape.half;
  const std::int64_t positions =
      std::max<std::int64_t>(1, std::min({by_items, by_table, shape.seq}));
  shape.positions = static_cast<int>(positions);
  const std::int64_t blocks = (shape.seq + positions - 1) / positions;
  RT_REQUIRE(blocks < (std::int64_t{1} << 31) &&
                 positions * items_per_position < (std::int64_t{1} << 31),
             "rope: (B, T, H, dh) = (", shape.batch, ", ", shape.seq, ", ", shape.heads, ", ",
             2 * shape.half, ") is too large");
  rope_kernel<S, kVec>
      <<<static_cast<unsigned>(blocks), RopeLaunch::kThreads, table_bytes(shape), stream>>>(
          cptr<S>(x), ptr<S>(y), shape, position_offset, std::log2(base), sign);
  RT_CHECK_LAUNCH();
}

// The widest vector (up to 16 bytes) that divides half and keeps both pointers aligned.
template <typename S>
void dispatch_vec(const Tensor& x, Tensor& y, const RopeShape& shape, std::int64_t position_offset,
                  double base, float sign, cudaStream_t stream) {
  const auto fits = [&](int vec) {
    return shape.half % vec == 0 && aligned(x, sizeof(S) * vec) && aligned(y, sizeof(S) * vec);
  };
  if constexpr (sizeof(S) == 2) {
    if (fits(8)) return launch<S, 8>(x, y, shape, position_offset, base, sign, stream);
  }
  if (fits(4)) return launch<S, 4>(x, y, shape, position_offset, base, sign, stream);
  if (fits(2)) return launch<S, 2>(x, y, shape, position_offset, base, sign, stream);
  launch<S, 1>(x, y, shape, position_offset, base, sign, stream);
}

void rotate(const Tensor& x, double base, std::int64_t position_offset, float sign, Tensor& y,
            const char* op, cudaStream_t stream) {
  if (x.numel() == 0) return;
  const RopeShape shape{.batch = static_cast<int>(x.dim(0)), .seq = x.dim(1),
                        .heads = static_cast<int>(x.dim(2)), .half = static_cast<int>(x.dim(3) / 2),
                        .positions = 0};
  RT_REQUIRE(shape.half <= RopeLaunch::kMaxHalf, op, ": the CUDA kernel takes head dims up to ",
             2 * RopeLaunch::kMaxHalf, ", got ", x.dim(3));
  dispatch_storage(x, op, [&](auto tag) {
    dispatch_vec<decltype(tag)>(x, y, shape, position_offset, base, sign, stream);
  });
}

}  // namespace

void rope_forward(const Tensor& x, double base, std::int64_t position_offset, Tensor& y,
                  cudaStream_t stream) {
  rotate(x, base, position_offset, 1.0f, y, "rope_forward", stream);
}

void rope_backward(const Tensor& dy, double base, std::int64_t position_offset, Tensor& dx,
                   cudaStream_t stream) {
  rotate(dy, base, position_offset, -1.0f, dx, "rope_backward", stream);
}

}  // namespace ratrain::cuda
