// Shared by the CUDA attention launchers and kernels (attention_forward.cu,
// attention_backward.cu): operand shape, kernel argument structs, and the host-side
// helpers that pick and launch a kernel.
//
// Two implementations sit behind each launcher, chosen on the host:
//   - SIMT (attention_*_simt.cuh): CUDA cores, fp32, any even dh <= 256, f32 or bf16
//     storage. The reference-grade path (f32 model tests compare it at 1e-4).
//   - tensor cores, bf16 storage with 16-byte aligned operands, fp32 accumulators:
//     dh = 128 on Hopper warpgroup MMA (attention_*_wgmma.cuh), dh = 64 on mma.sync
//     m16n8k16 (attention_*_mma.cuh).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "kernels/cuda/attention_rule.cuh"
#include "kernels/cuda/storage.cuh"
#include "kernels/cuda/tile_order.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;
inline constexpr int kMaxHeadDim = 256;

// Shape of the (B, T, H, dh) operands; row (b, t, h) at ((b*T + t)*H + h)*dh, so the
// rows of one (b, h) pair are row_stride() elements apart. Statistics (lse, delta) are
// (B, H, T).
struct AttentionShape {
  int batch, seq, heads, dh;
  __host__ __device__ std::int64_t row_stride() const { return std::int64_t{heads} * dh; }
  // Offset of row (b, 0, h) for the pair index bh = b*H + h.
  __host__ __device__ std::int64_t head_base(int bh) const {
    const int b = bh / heads, h = bh % heads;
    return (std::int64_t{b} * seq * heads + h) * dh;
  }
  // Offset of (b, h, 0) in a (B, H, T) statistic.
  __host__ __device__ std::int64_t stat_base(int bh) const { return std::int64_t{bh} * seq; }
  __host__ __device__ std::int64_t rows() const { return std::int64_t{batch} * seq * heads; }
};

template <typename T>
struct ForwardArgs {
  const T *q, *k, *v;  // (B, T, H, dh)
  T* out;              // (B, T, H, dh)
  float* lse;          // (B, H, T): natural log-sum-exp of the scaled scores
  AttentionShape shape;
  KeySets keys;
  float scale_log2;    // log2(e) / sqrt(dh): scores are exponentiated in base 2
};

template <typename T>
struct BackwardArgs {
  const T *q, *k, *v, *dout;  // (B, T, H, dh)
  const float* lse;           // (B, H, T)
  const float* delta;         // (B, H, T): dout_i . out_i
  float* dq_acc;              // (B, T, H, dh) fp32, zeroed, accumulated with atomics
  T *dk, *dv;                 // (B, T, H, dh): each row written once, by its key tile's CTA
  AttentionShape shape;
  KeySets keys;
  float scale_log2;  // log2(e) / sqrt(dh)
  float scale;       // 1 / sqrt(dh)
};

// The shape of q (B, T, H, dh), checked against what the kernels index with int.
inline AttentionShape attention_shape(const Tensor& q, const char* op) {
  const std::int64_t dh = q.dim(3);
  RT_REQUIRE(dh % 2 == 0 && dh > 0 && dh <= kMaxHeadDim, op,
             ": the CUDA kernels take an even head dim of at most ", kMaxHeadDim, ", got ", dh);
  RT_REQUIRE(q.dim(1) < (std::int64_t{1} << 30) && q.dim(0) * q.dim(2) < (std::int64_t{1} << 31),
             op, ": sequence or batch x heads too large for the CUDA kernels: ", shape_str(q.shape()));
  return {static_cast<int>(q.dim(0)), static_cast<int>(q.dim(1)), static_cast<int>(q.dim(2)),
          static_cast<int>(dh)};
}

// The tensor-core kernels read rows with 16-byte cp.async and are compiled for dh 64 and 128.
inline bool mma_supports(const AttentionShape& shape, std::initializer_list<const Tensor*> operands) {
  if (shape.dh != 64 && shape.dh != 128) return false;
  for (const Tensor* t : operands)
    if (reinterpret_cast<std::uintptr_t>(t->raw()) % 16 != 0) return false;
  return true;
}

// Calls fn(std::integral_constant<int, N>{}) with N = columns per lane of the SIMT
// kernels: the smallest of 1, 2, 4, 8 with 32 N >= dh.
template <typename Fn>
void with_columns_per_lane(int dh, Fn&& fn) {
  if (dh <= 32) return fn(std::integral_constant<int, 1>{});
  if (dh <= 64) return fn(std::integral_constant<int, 2>{});
  if (dh <= 128) return fn(std::integral_constant<int, 4>{});
  return fn(std::integral_constant<int, 8>{});
}

// L2 bytes the CTAs of one section may keep busy (tile_order.cuh): FlashAttention-3's
// 40 MiB of the H100's and H200's 50 MiB. The environment variable
// RATRAIN_ATTENTION_L2_MIB overrides it (0: the plain order), for timing one against the
// other in one process (benchmarks/README.md).
inline std::int64_t attention_l2_section_bytes() {
  static const std::int64_t bytes = [] {
    const char* text = std::getenv("RATRAIN_ATTENTION_L2_MIB");
    if (text == nullptr) return std::int64_t{40} << 20;
    char* end = nullptr;
    const long long mib = std::strtoll(text, &end, 10);
    RT_REQUIRE(end != text && *end == '\0' && mib >= 0 && mib < (1LL << 20),
               "RATRAIN_ATTENTION_L2_MIB must be a whole number of MiB >= 0, got '", text, "'");
    return std::int64_t{mib} << 20;
  }();
  return bytes;
}

// The launch order, checked against the grid's limit.
inline TileOrder checked_tile_order(const TileOrder& order, const AttentionShape& shape,
                                    const char* op) {
  RT_REQUIRE(order.blocks() < (std::int64_t{1} << 31), op, ": ", order.pairs, " x ", order.tiles,
             " tiles exceed the grid; T = ", shape.seq);
  return order;
}

// Launches over explicit key sets (attention_keys.cu, sequence parallelism): the plain order.
inline TileOrder plain_tile_order(const AttentionShape& shape, int tiles, const char* op) {
  return checked_tile_order(TileOrder::plain(shape.batch * shape.heads, tiles), shape, op);
}

// Forward launches: every query tile of a pair reads the K, V rows of the pair's global
// keys (elem_bytes per element).
inline TileOrder forward_tile_order(const AttentionShape& shape, const KeySets& keys,
                                    int query_tiles, std::size_t elem_bytes, const char* op) {
  const std::int64_t bytes = 2 * std::int64_t{keys.count_below(keys.seq)} * shape.dh *
                             static_cast<std::int64_t>(elem_bytes);
  const int pairs = shape.batch * shape.heads;
  return checked_tile_order(
      TileOrder::sectioned(pairs, query_tiles, query_tiles, bytes, attention_l2_section_bytes()),
      shape, op);
}

// Backward launches: every global key tile of a pair reads the pair's queries, output
// gradients (elem_bytes per element) and adds to its fp32 dq accumulator rows.
inline TileOrder backward_tile_order(const AttentionShape& shape, const BackwardPlan& plan,
                                     std::size_t elem_bytes, const char* op) {
  const std::int64_t bytes =
      std::int64_t{shape.seq} * shape.dh * (2 * static_cast<std::int64_t>(elem_bytes) + 4);
  const int pairs = shape.batch * shape.heads;
  return checked_tile_order(TileOrder::sectioned(pairs, plan.tiles(), plan.global_tiles, bytes,
                                                 attention_l2_section_bytes()),
                            shape, op);
}

// Launches kernel<<<order.blocks(), threads, smem_bytes, stream>>>(args..., order), raising
// the kernel's dynamic shared memory limit first where it exceeds the default 48 KiB.
template <typename... Params, typename... Args>
void launch_attention_kernel(void (*kernel)(Params...), const TileOrder& order, int threads,
                             std::size_t smem_bytes, cudaStream_t stream, Args&&... args) {
  if (order.pairs == 0 || order.tiles == 0) return;
  if (smem_bytes > 48 * 1024)
    RT_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem_bytes)));
  const auto blocks = static_cast<unsigned>(order.blocks());
  kernel<<<blocks, threads, smem_bytes, stream>>>(std::forward<Args>(args)..., order);
  RT_CHECK_LAUNCH();
}

// 2^x on the special-function unit (ex2.approx.ftz: relative error about 2^-22,
// results below 2^-126 flushed to 0, 2^-inf = 0). exp2f wraps the same instruction in
// a range check and two scalings, which cost the tensor-core kernels three more
// instructions per score.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Sum and max over the 32 lanes of a warp (every lane receives the result).
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// ---- per-row kernels of the backward passes: one warp per (b, t, h) row ------------------

struct RowLaunch {
  static constexpr int kThreads = 256;  // 8 rows per block, one warp each
  static constexpr int kRowsPerBlock = kThreads / 32;
  static unsigned blocks(std::int64_t rows) {
    return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  }
};

// Offset of (b, h, t) in a (B, H, T) statistic for row (b, t, h) of a (B, T, H, dh) tensor.
__device__ __forceinline__ std::int64_t stat_of_row(std::int64_t row, const AttentionShape& shape) {
  const std::int64_t h = row % shape.heads, bt = row / shape.heads;
  const std::int64_t b = bt / shape.seq, t = bt % shape.seq;
  return (b * shape.heads + h) * shape.seq + t;
}

// delta[b, h, t] = sum_c dout[b, t, h, c] out[b, t, h, c], in fp32: the row term of every
// attention backward (attention_backward.cu, attention_keys.cu).
template <typename T>
__global__ void attention_delta_kernel(const T* out, const T* dout, float* delta,
                                       AttentionShape shape) {
  const std::int64_t row = std::int64_t{blockIdx.x} * RowLaunch::kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= shape.rows()) return;  // warp-uniform
  const std::int64_t at = row * shape.dh;
  float sum = 0.0f;
  for (int c = lane; c < shape.dh; c += 32) sum += to_float(out[at + c]) * to_float(dout[at + c]);
  sum = warp_sum(sum);
  if (lane == 0) delta[stat_of_row(row, shape)] = sum;
}

template <typename T>
void launch_attention_delta(const T* out, const T* dout, float* delta, const AttentionShape& shape,
                            cudaStream_t stream) {
  attention_delta_kernel<T><<<RowLaunch::blocks(shape.rows()), RowLaunch::kThreads, 0, stream>>>(
      out, dout, delta, shape);
  RT_CHECK_LAUNCH();
}

}  // namespace ratrain::cuda
