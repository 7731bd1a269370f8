// Tied output head fused with cross-entropy on the GPU, same semantics as
// kernels/cpu/cross_entropy.cpp, a block of R rows at a time so that the logits scratch
// is (R, V) and never (N, V):
//   logits (R, V) f32 = x_blk (R, C) emb^T                  (gemm; bf16 inputs, f32 out)
//   row kernel, per row with label y:  m = max z,  lse = m + log sum_j exp(z_j - m),
//     loss = lse - z_y,  and with gradients  G = grad_scale * (softmax(z) - onehot(y))
//     (a zero row for an ignored label)
//   demb (V, C) f32 += G^T x_blk,   dx_blk (R, C) = G emb    (overwritten)
// x, dx, emb in one storage type (bf16 or f32); labels (N) i32; demb f32.
//
// Precision of G. The loss and softmax are computed in fp32 from f32 logits (better than
// autocast, whose logits are bf16). G is then stored in the storage type, because the
// backward GEMMs take A and B of one type: bf16 under bf16 storage, which is exactly what
// PyTorch autocast feeds its bf16 matmul backward. bf16 keeps fp32's exponent range, so
// grad_scale * p stays representable however small (with grad_scale = 1/valid ~ 1e-5 and
// p ~ 1e-10 it would underflow fp16, not bf16); each element only loses mantissa
// (2^-9 relative), and those rounding errors average out in the GEMMs' fp32 sums. Under
// f32 storage G overwrites the logits in place.
//
// Memory: R is chosen so that the f32 logits stay within kLogitsBudgetBytes (V = 32000:
// 2048 rows, 250 MiB), plus, for bf16 with gradients, a bf16 copy of G (half that).
//
// Determinism and syncs: each row's loss goes to an (N) f32 array; after the last block
// one block sums it in double in a fixed order and counts the valid labels. The loss sum,
// the count and the first bad label position come back in one copy: one sync per call.
// A label outside [0, V) that is not -100 is treated as ignored by the kernels and
// reported after that sync, naming the label and its position as the CPU backend does;
// unlike the CPU, which checks first, dx and demb then hold partial results.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

struct CrossEntropyLaunch {
  static constexpr int kRowThreads = 512;       // per logits row: ~63 logits each at V = 32000
  static constexpr int kSummaryThreads = 1024;  // the one summary block (a power of two)
  static constexpr std::size_t kLogitsBudgetBytes = std::size_t{256} << 20;
  // Block rows are rounded down to a multiple of this: GEMM-tile friendly, and every
  // block's x and dx rows then start 256-byte aligned, the alignment cuBLASLt's
  // heuristic assumes by default.
  static constexpr std::int64_t kRowGranule = 128;
};

constexpr unsigned long long kNoBadPosition = ~0ull;

// What comes back to the host, in one copy.
struct Summary {
  double loss_sum;
  long long valid;
  unsigned long long first_bad;  // smallest position of a bad label, or kNoBadPosition
};
static_assert(sizeof(Summary) == 3 * sizeof(double), "Summary lives in an f64 tensor of 3");

// Softmax normaliser of a set of logits: its max and sum_j exp(z_j - max). The empty set
// is {-inf, 0}.
struct SoftmaxStat {
  float max;
  float sum;
};

// Symmetric in a and b (so every lane of a butterfly ends with the same bits).
__device__ SoftmaxStat merge(SoftmaxStat a, SoftmaxStat b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -INFINITY) return {m, 0.0f};  // both empty: avoid exp(-inf - -inf) = NaN
  return {m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

__device__ SoftmaxStat warp_merge(SoftmaxStat s) {
  for (int offset = 16; offset > 0; offset /= 2)
    s = merge(s, {__shfl_xor_sync(0xffffffffu, s.max, offset),
                  __shfl_xor_sync(0xffffffffu, s.sum, offset)});
  return s;
}

// Merge over the block (blockDim.x a multiple of 32); every thread receives the total.
// Called once per block: its shared array is not reused afterwards.
__device__ SoftmaxStat block_merge(SoftmaxStat s) {
  __shared__ SoftmaxStat warp_stats[32];
  s = warp_merge(s);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_stats[warp] = s;
  __syncthreads();
  s = lane < static_cast<int>(blockDim.x / 32) ? warp_stats[lane] : SoftmaxStat{-INFINITY, 0.0f};
  return warp_merge(s);
}

// One block per row r of a block of rows whose first global row is row_offset.
// logits (R, V) f32; grad (R, V) in T or null (forward only), may alias logits when T is
// float; labels (R) of this block; row_loss (R) of this block.
template <typename T>
__global__ void softmax_cross_entropy_rows_kernel(const float* logits, T* grad,
                                                  const std::int32_t* labels, std::int64_t vocab,
                                                  float grad_scale, std::int64_t row_offset,
                                                  float* row_loss, unsigned long long* first_bad) {
  const std::int64_t r = blockIdx.x;
  const float* z = logits + r * vocab;
  T* g = grad ? grad + r * vocab : nullptr;
  const std::int32_t label = labels[r];
  if (label == ops::kIgnoreLabel || label < 0 || label >= vocab) {
    if (threadIdx.x == 0) {
      row_loss[r] = 0.0f;
      if (label != ops::kIgnoreLabel)
        atomicMin(first_bad, static_cast<unsigned long long>(row_offset + r));
    }
    if (g)
      for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) g[j] = from_float<T>(0.0f);
    return;
  }
  // Every read of z precedes block_merge's barrier, every write of g (which may be z)
  // follows it and touches only the element the same thread reads.
  const float z_label = z[label];
  SoftmaxStat s{-INFINITY, 0.0f};
  for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = z[j];
    if (v > s.max) {
      s.sum = s.sum * expf(s.max - v) + 1.0f;
      s.max = v;
    } else {
      s.sum += expf(v - s.max);
    }
  }
  s = block_merge(s);
  const float lse = s.max + logf(s.sum);
  if (threadIdx.x == 0) row_loss[r] = lse - z_label;
  if (!g) return;
  for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float p = expf(z[j] - lse);
    g[j] = from_float<T>(grad_scale * (j == label ? p - 1.0f : p));
  }
}

// One block: summary->loss_sum = sum of row_loss (N) in double (skipped when row_loss is
// null) and summary->valid = number of labels != -100. Each thread sums a fixed strided
// subset, then a fixed tree: the same order on every call.
__global__ void summarize_kernel(const float* row_loss, const std::int32_t* labels, std::int64_t n,
                                 Summary* summary) {
  __shared__ double loss[CrossEntropyLaunch::kSummaryThreads];
  __shared__ long long valid[CrossEntropyLaunch::kSummaryThreads];
  double my_loss = 0;
  long long my_valid = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    if (row_loss) my_loss += row_loss[i];
    my_valid += labels[i] != ops::kIgnoreLabel;
  }
  loss[threadIdx.x] = my_loss;
  valid[threadIdx.x] = my_valid;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      loss[threadIdx.x] += loss[threadIdx.x + stride];
      valid[threadIdx.x] += valid[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    summary->loss_sum = loss[0];
    summary->valid = valid[0];
  }
}

// The first_bad word of a device Summary.
unsigned long long* first_bad_of(const Tensor& summary) {
  return reinterpret_cast<unsigned long long*>(static_cast<std::byte*>(summary.raw()) +
                                               offsetof(Summary, first_bad));
}

// A device Summary (in an f64 tensor: Tensor has no struct dtype; 8-byte aligned) with
// first_bad set to kNoBadPosition on `stream`.
Tensor device_summary(cudaStream_t stream) {
  Tensor t = Tensor::empty({3}, DType::f64, Device::cuda);
  RT_CHECK_CUDA(cudaMemsetAsync(first_bad_of(t), 0xFF, sizeof(unsigned long long), stream));
  return t;
}

// Sums row_loss (may be null) and counts valid labels into `summary`, then copies it back:
// waits for everything queued on `stream`.
Summary summarize(const float* row_loss, const Tensor& labels, const Tensor& summary,
                  cudaStream_t stream) {
  summarize_kernel<<<1, CrossEntropyLaunch::kSummaryThreads, 0, stream>>>(
      row_loss, cptr<std::int32_t>(labels), labels.numel(), static_cast<Summary*>(summary.raw()));
  RT_CHECK_LAUNCH();
  Summary host{};
  RT_CHECK_CUDA(cudaMemcpyAsync(&host, summary.raw(), sizeof host, cudaMemcpyDeviceToHost, stream));
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  return host;
}

// Rows per block: as many as keep the (R, V) f32 logits within the budget, rounded down to
// kRowGranule, at least 1 and at most N. Example: V = 32000 -> 268435456 / 128000 = 2097
// -> 2048 rows.
std::int64_t logits_block_rows(std::int64_t n, std::int64_t vocab) {
  auto rows = static_cast<std::int64_t>(CrossEntropyLaunch::kLogitsBudgetBytes /
                                        (static_cast<std::size_t>(vocab) * sizeof(float)));
  if (rows >= CrossEntropyLaunch::kRowGranule)
    rows = rows / CrossEntropyLaunch::kRowGranule * CrossEntropyLaunch::kRowGranule;
  return std::clamp<std::int64_t>(rows, 1, n);
}

}  // namespace

ops::CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                                const Tensor& labels, double grad_scale,
                                                Tensor* dx, Tensor* demb, cudaStream_t stream) {
  const std::int64_t n = x.dim(0), vocab = emb.dim(0);
  RT_REQUIRE(vocab > 0, "tied_head_cross_entropy: the vocabulary (emb's rows) is empty");
  if (n == 0) return {};
  const bool want_grad = dx != nullptr || demb != nullptr;
  const std::int64_t block_rows = logits_block_rows(n, vocab);
  Tensor logits = Tensor::empty({block_rows, vocab}, DType::f32, Device::cuda);  // (R, V)
  // (R, V) G in the storage type when that is not f32; under f32, G overwrites logits.
  const Tensor grad_copy = want_grad && x.dtype() != DType::f32
                               ? Tensor::empty({block_rows, vocab}, x.dtype(), Device::cuda)
                               : Tensor();
  const Tensor row_loss = Tensor::empty({n}, DType::f32, Device::cuda);  // (N)
  const Tensor summary = device_summary(stream);

  dispatch_storage(x, "tied_head_cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    for (std::int64_t r0 = 0; r0 < n; r0 += block_rows) {
      const std::int64_t rows = std::min(block_rows, n - r0);
      const Tensor x_blk = x.rows(r0, r0 + rows);  // (rows, C)
      Tensor z = logits.rows(0, rows);             // (rows, V) f32
      gemm(x_blk, emb, z, {.transpose_b = true}, stream);  // z = x_blk emb^T
      Tensor g = !want_grad ? Tensor() : grad_copy.defined() ? grad_copy.rows(0, rows) : z;
      softmax_cross_entropy_rows_kernel<T>
          <<<static_cast<unsigned>(rows), CrossEntropyLaunch::kRowThreads, 0, stream>>>(
              cptr<float>(z), want_grad ? ptr<T>(g) : nullptr, cptr<std::int32_t>(labels) + r0,
              vocab, static_cast<float>(grad_scale), r0, ptr<float>(row_loss) + r0,
              first_bad_of(summary));
      RT_CHECK_LAUNCH();
      // demb before dx, so that x_blk is read before dx_blk is written (safe even in place).
      if (demb) gemm(g, x_blk, *demb, {.transpose_a = true, .beta = 1.0f}, stream);  // += G^T x_blk
      if (dx) {
        Tensor dx_blk = dx->rows(r0, r0 + rows);  // (rows, C)
        gemm(g, emb, dx_blk, {}, stream);         // dx_blk = G emb
      }
    }
  });

  const Summary result = summarize(cptr<float>(row_loss), labels, summary, stream);
  if (result.first_bad != kNoBadPosition) {
    std::int32_t label = 0;
    RT_CHECK_CUDA(cudaMemcpyAsync(&label, cptr<std::int32_t>(labels) + result.first_bad,
                                  sizeof label, cudaMemcpyDeviceToHost, stream));
    RT_CHECK_CUDA(cudaStreamSynchronize(stream));
    RT_REQUIRE(label == ops::kIgnoreLabel || (label >= 0 && label < vocab), "label ", label,
               " at position ", result.first_bad, " is outside the vocabulary [0, ", vocab,
               ") and is not the ignore label ", ops::kIgnoreLabel);
  }
  return {.loss_sum = result.loss_sum, .valid = result.valid};
}

std::int64_t count_valid_labels(const Tensor& labels, cudaStream_t stream) {
  if (labels.numel() == 0) return 0;
  const Tensor summary = device_summary(stream);
  return summarize(nullptr, labels, summary, stream).valid;
}

}  // namespace ratrain::cuda
