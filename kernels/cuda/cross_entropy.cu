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
// Vocab shards (ops.hpp, parallel/vocab_parallel.cpp). emb is then rows [vocab_begin,
// vocab_begin + Vs) of the table (a VocabShard, vocab_shard.cuh; the full head passes the
// whole table), so the logits block is (R, Vs) and the same block loop and row kernel
// serve three forms, told apart by what the row kernel is given (HeadRows):
//   full head      lse computed per row; the row's loss and G written
//   shard phase 1  every row's (max, sum of exp, target logit) written to stats (3, N) f64
//   shard phase 2  the full row's lse given (f64, from the fold); G written, the one-hot
//                  only where this shard holds the label
// Between the phases the fold (merge_cross_entropy_shard_stats) combines the S shards'
// stats per row in shard order, in double, exactly as the CPU fold does, and sums the
// losses with the full head's summary kernel. Phase 1 keeps fp32 statistics like the full
// head (then widened to f64 for the collective), and phase 2 takes its lse in fp32, so a
// sharded G matches the full head's to fp32 rounding.
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
// unlike the CPU, which checks first, dx and demb then hold partial results. The shard
// phases never synchronise: they treat a bad (negative) label as ignored too, and the
// fold between them, which synchronises anyway for the loss, reports it; so a bad label
// fails before phase 2 writes any gradient.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/storage.cuh"
#include "kernels/cuda/vocab_shard.cuh"
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
// is {-inf, 0}. F is float in the row kernel and double in the fold of the shards' stats;
// exp and fmax resolve to expf and fmaxf for float.
template <typename F>
struct SoftmaxStat {
  F max;
  F sum;
};

// Symmetric in a and b (so every lane of a butterfly ends with the same bits).
template <typename F>
__device__ SoftmaxStat<F> merge(SoftmaxStat<F> a, SoftmaxStat<F> b) {
  const F m = fmax(a.max, b.max);
  if (m == -INFINITY) return {m, F(0)};  // both empty: avoid exp(-inf - -inf) = NaN
  return {m, a.sum * exp(a.max - m) + b.sum * exp(b.max - m)};
}

__device__ SoftmaxStat<float> warp_merge(SoftmaxStat<float> s) {
  for (int offset = 16; offset > 0; offset /= 2)
    s = merge(s, {__shfl_xor_sync(0xffffffffu, s.max, offset),
                  __shfl_xor_sync(0xffffffffu, s.sum, offset)});
  return s;
}

// Merge over the block (blockDim.x a multiple of 32); every thread receives the total.
// Called once per block: its shared array is not reused afterwards.
__device__ SoftmaxStat<float> block_merge(SoftmaxStat<float> s) {
  __shared__ SoftmaxStat<float> warp_stats[32];
  s = warp_merge(s);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_stats[warp] = s;
  __syncthreads();
  s = lane < static_cast<int>(blockDim.x / 32) ? warp_stats[lane]
                                                : SoftmaxStat<float>{-INFINITY, 0.0f};
  return warp_merge(s);
}

// The statistics of one logits row z (columns) over the block, each thread taking a
// strided subset online; every thread receives the total. Has a barrier (block_merge):
// call from every thread, once per block.
__device__ SoftmaxStat<float> row_softmax_stat(const float* z, std::int64_t columns) {
  SoftmaxStat<float> s{-INFINITY, 0.0f};
  for (std::int64_t j = threadIdx.x; j < columns; j += blockDim.x) {
    const float v = z[j];
    if (v > s.max) {
      s.sum = s.sum * expf(s.max - v) + 1.0f;
      s.max = v;
    } else {
      s.sum += expf(v - s.max);
    }
  }
  return block_merge(s);
}

// g (columns) = grad_scale * (exp(z - lse) - onehot(target)); target < 0: no one-hot (the
// label is another shard's). Each thread writes only the elements it reads, so g may be z.
template <typename T>
__device__ void write_softmax_gradient(const float* z, T* g, std::int64_t columns, float lse,
                                       std::int64_t target, float grad_scale) {
  for (std::int64_t j = threadIdx.x; j < columns; j += blockDim.x) {
    const float p = expf(z[j] - lse);
    g[j] = from_float<T>(grad_scale * (j == target ? p - 1.0f : p));
  }
}

// The rows of one shard's statistics (kShardStatRows, N) f64, laid out as ops.hpp says.
struct ShardStatRows {
  double* max = nullptr;           // (N) max logit
  double* sum_exp = nullptr;       // (N) sum of exp(z - max)
  double* target_logit = nullptr;  // (N) z at the label where the shard holds it, else 0
};
ShardStatRows shard_stat_rows(const Tensor& stats) {
  static_assert(ops::kShardStatRows == 3, "ShardStatRows names every row of the layout");
  double* base = ptr<double>(stats);
  const std::int64_t n = stats.dim(1);
  return {.max = base, .sum_exp = base + n, .target_logit = base + 2 * n};
}

// What the row kernel does with the rows of x (all indexed by the global row). The forms
// of the file header: full head {row_loss, first_bad}; shard phase 1 {stats}; shard
// phase 2 {lse}; G is written wherever the launch passes a gradient buffer.
struct HeadRows {
  const std::int32_t* labels = nullptr;      // (N)
  VocabShard shard;                          // emb's rows: the logits' columns
  float grad_scale = 0.0f;
  const double* lse = nullptr;               // (N) the full rows' lse, or null: computed here
  float* row_loss = nullptr;                 // (N) lse - z[label], 0 where ignored; or null
  ShardStatRows stats;                       // or all null
  unsigned long long* first_bad = nullptr;   // smallest row of a bad label; null: not kept
};

// One block per row r of a block of rows whose first global row is first_row.
// logits (R, Vs) f32; grad (R, Vs) in T or null (no gradient), may alias logits when T is
// float. Every branch below depends on the row only, so all threads reach the barrier.
template <typename T>
__global__ void softmax_cross_entropy_rows_kernel(const HeadRows head, const float* logits,
                                                  T* grad, std::int64_t first_row) {
  const std::int64_t r = blockIdx.x, i = first_row + r, columns = head.shard.rows;
  const float* z = logits + r * columns;
  T* g = grad ? grad + r * columns : nullptr;
  const std::int32_t label = head.labels[i];
  const bool bad = label != ops::kIgnoreLabel && head.shard.is_bad(label);
  const bool ignored = label == ops::kIgnoreLabel || bad;
  if (bad && head.first_bad && threadIdx.x == 0)
    atomicMin(head.first_bad, static_cast<unsigned long long>(i));
  const std::int64_t target = ignored ? -1 : head.shard.row_of(label);  // -1: not held here
  // The row statistic: for phase 1's stats, and for the lse where none is given. z_target
  // is read only then (its users, the loss and the stats, are forms that compute it), so
  // the statistic's barrier orders the read before any write of g (which may be z).
  const bool computes_stat = head.stats.max != nullptr || (!ignored && head.lse == nullptr);
  const float z_target = computes_stat && target >= 0 ? z[target] : 0.0f;
  SoftmaxStat<float> s{-INFINITY, 0.0f};
  if (computes_stat) s = row_softmax_stat(z, columns);
  if (head.stats.max && threadIdx.x == 0) {
    head.stats.max[i] = s.max;
    head.stats.sum_exp[i] = s.sum;
    head.stats.target_logit[i] = z_target;  // exactly 0 where another shard holds the label
  }
  if (ignored) {
    if (head.row_loss && threadIdx.x == 0) head.row_loss[i] = 0.0f;
    if (g)
      for (std::int64_t j = threadIdx.x; j < columns; j += blockDim.x) g[j] = from_float<T>(0.0f);
    return;
  }
  const float lse = head.lse ? static_cast<float>(head.lse[i]) : s.max + logf(s.sum);
  if (head.row_loss && threadIdx.x == 0) head.row_loss[i] = lse - z_target;
  if (g) write_softmax_gradient(z, g, columns, lse, target, head.grad_scale);
}

// The row losses the summary sums, as a functor row_loss(i, labels[i]) -> double.
// The full head's: its (N) f32 array (0 on ignored rows).
struct StoredRowLoss {
  const float* loss;  // (N)
  __device__ double operator()(std::int64_t i, std::int32_t) const { return loss[i]; }
};
// None: only the valid labels are counted.
struct NoRowLoss {
  __device__ double operator()(std::int64_t, std::int32_t) const { return 0.0; }
};
// The fold of the S shards' statistics of row i, in shard order and in double with the
// operations of the CPU fold (kernels/cpu/cross_entropy.cpp); writes lse[i] and returns
// the row's loss. A negative label other than -100 (which the shard phases treat as
// ignored; V is unknown, so larger ones cannot be checked) is recorded as bad.
struct ShardStatsFold {
  const double* all_stats;  // (S * kShardStatRows, N), shard order
  std::int64_t shards, n;
  double* lse;              // (N)
  unsigned long long* first_bad;
  __device__ double operator()(std::int64_t i, std::int32_t label) const {
    SoftmaxStat<double> row{-INFINITY, 0.0};
    double target = 0;  // one shard holds the label, the others add exact zeros
    for (std::int64_t s = 0; s < shards; ++s) {
      const double* shard = all_stats + s * ops::kShardStatRows * n;  // max, sum_exp, target
      row = merge(row, {shard[i], shard[n + i]});
      target += shard[2 * n + i];
    }
    const double row_lse = row.max + log(row.sum);
    lse[i] = row_lse;
    if (label == ops::kIgnoreLabel) return 0.0;
    if (label < 0) {
      atomicMin(first_bad, static_cast<unsigned long long>(i));
      return 0.0;
    }
    return row_lse - target;
  }
};

// One block: summary->loss_sum = sum over rows of row_loss(i, labels[i]) in double and
// summary->valid = number of labels != -100. Each thread sums a fixed strided subset, then
// a fixed tree: the same order on every call, and for every RowLoss. The launch bound
// caps registers at 64 per thread, what a block of 1024 may use (the shard fold's RowLoss
// needed 68 unbounded and could not launch).
template <typename RowLoss>
__global__ void __launch_bounds__(CrossEntropyLaunch::kSummaryThreads) summarize_kernel(const RowLoss row_loss, const std::int32_t* labels,
                                 std::int64_t n, Summary* summary) {
  __shared__ double loss[CrossEntropyLaunch::kSummaryThreads];
  __shared__ long long valid[CrossEntropyLaunch::kSummaryThreads];
  double my_loss = 0;
  long long my_valid = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const std::int32_t label = labels[i];
    my_loss += row_loss(i, label);
    my_valid += label != ops::kIgnoreLabel;
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

// Sums row_loss and counts valid labels into `summary`, then copies it back: waits for
// everything queued on `stream`.
template <typename RowLoss>
Summary summarize(const RowLoss& row_loss, const Tensor& labels, const Tensor& summary,
                  cudaStream_t stream) {
  summarize_kernel<<<1, CrossEntropyLaunch::kSummaryThreads, 0, stream>>>(
      row_loss, cptr<std::int32_t>(labels), labels.numel(), static_cast<Summary*>(summary.raw()));
  RT_CHECK_LAUNCH();
  Summary host{};
  RT_CHECK_CUDA(cudaMemcpyAsync(&host, summary.raw(), sizeof host, cudaMemcpyDeviceToHost, stream));
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  return host;
}

// Fails, as the CPU backend does, naming the first bad label and its position if the
// summary recorded one. vocab_name: the "V" of "[0, V)".
void report_bad_label(const Summary& summary, const Tensor& labels, const std::string& vocab_name,
                      cudaStream_t stream) {
  if (summary.first_bad == kNoBadPosition) return;
  std::int32_t label = 0;
  RT_CHECK_CUDA(cudaMemcpyAsync(&label, cptr<std::int32_t>(labels) + summary.first_bad,
                                sizeof label, cudaMemcpyDeviceToHost, stream));
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  RT_FAIL("label ", label, " at position ", summary.first_bad, " is outside the vocabulary [0, ",
          vocab_name, ") and is not the ignore label ", ops::kIgnoreLabel);
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

// The block loop of every form: for each block of rows, z = x_blk emb^T, the row kernel
// (doing what `head` asks), then the gradient GEMMs where dx or demb is given. emb (Vs, C)
// is the shard head.shard describes (the whole table for the full head).
void run_head_blocks(const Tensor& x, const Tensor& emb, const HeadRows& head, Tensor* dx,
                     Tensor* demb, const char* op, cudaStream_t stream) {
  const std::int64_t n = x.dim(0), vocab = emb.dim(0);
  if (n == 0) return;
  const bool want_grad = dx != nullptr || demb != nullptr;
  const std::int64_t block_rows = logits_block_rows(n, vocab);
  Tensor logits = Tensor::empty({block_rows, vocab}, DType::f32, Device::cuda);  // (R, Vs)
  // (R, Vs) G in the storage type when that is not f32; under f32, G overwrites logits.
  const Tensor grad_copy = want_grad && x.dtype() != DType::f32
                               ? Tensor::empty({block_rows, vocab}, x.dtype(), Device::cuda)
                               : Tensor();
  dispatch_storage(x, op, [&](auto tag) {
    using T = decltype(tag);
    for (std::int64_t r0 = 0; r0 < n; r0 += block_rows) {
      const std::int64_t rows = std::min(block_rows, n - r0);
      const Tensor x_blk = x.rows(r0, r0 + rows);  // (rows, C)
      Tensor z = logits.rows(0, rows);             // (rows, Vs) f32
      gemm(x_blk, emb, z, {.transpose_b = true}, stream);  // z = x_blk emb^T
      Tensor g = !want_grad ? Tensor() : grad_copy.defined() ? grad_copy.rows(0, rows) : z;
      softmax_cross_entropy_rows_kernel<T>
          <<<static_cast<unsigned>(rows), CrossEntropyLaunch::kRowThreads, 0, stream>>>(
              head, cptr<float>(z), want_grad ? ptr<T>(g) : nullptr, r0);
      RT_CHECK_LAUNCH();
      // demb before dx, so that x_blk is read before dx_blk is written (safe even in place).
      if (demb) gemm(g, x_blk, *demb, {.transpose_a = true, .beta = 1.0f}, stream);  // += G^T x_blk
      if (dx) {
        Tensor dx_blk = dx->rows(r0, r0 + rows);  // (rows, C)
        gemm(g, emb, dx_blk, {}, stream);         // dx_blk = G emb
      }
    }
  });
}

}  // namespace

ops::CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                                const Tensor& labels, double grad_scale,
                                                Tensor* dx, Tensor* demb, cudaStream_t stream) {
  const std::int64_t n = x.dim(0), vocab = emb.dim(0);
  RT_REQUIRE(vocab > 0, "tied_head_cross_entropy: the vocabulary (emb's rows) is empty");
  if (n == 0) return {};
  const Tensor row_loss = Tensor::empty({n}, DType::f32, Device::cuda);  // (N)
  const Tensor summary = device_summary(stream);
  const VocabShard whole = VocabShard::whole(vocab);
  run_head_blocks(x, emb,
                  {.labels = cptr<std::int32_t>(labels), .shard = whole,
                   .grad_scale = static_cast<float>(grad_scale), .row_loss = ptr<float>(row_loss),
                   .first_bad = first_bad_of(summary)},
                  dx, demb, "tied_head_cross_entropy", stream);
  const Summary result = summarize(StoredRowLoss{cptr<float>(row_loss)}, labels, summary, stream);
  report_bad_label(result, labels, whole.vocab_name(), stream);
  return {.loss_sum = result.loss_sum, .valid = result.valid};
}

std::int64_t count_valid_labels(const Tensor& labels, cudaStream_t stream) {
  if (labels.numel() == 0) return 0;
  const Tensor summary = device_summary(stream);
  return summarize(NoRowLoss{}, labels, summary, stream).valid;
}

void cross_entropy_shard_stats(const Tensor& x, const Tensor& emb_shard, std::int64_t vocab_begin,
                               const Tensor& labels, Tensor& stats, cudaStream_t stream) {
  run_head_blocks(x, emb_shard,
                  {.labels = cptr<std::int32_t>(labels),
                   .shard = VocabShard::part(vocab_begin, emb_shard.dim(0)),
                   .stats = shard_stat_rows(stats)},
                  nullptr, nullptr, "cross_entropy_shard_stats", stream);
}

ops::CrossEntropyResult merge_cross_entropy_shard_stats(const Tensor& all_stats,
                                                        const Tensor& labels, Tensor& lse,
                                                        cudaStream_t stream) {
  const std::int64_t n = labels.numel();
  if (n == 0) return {};
  const Tensor summary = device_summary(stream);
  const ShardStatsFold fold{.all_stats = cptr<double>(all_stats),
                            .shards = all_stats.dim(0) / ops::kShardStatRows,
                            .n = n,
                            .lse = ptr<double>(lse),
                            .first_bad = first_bad_of(summary)};
  const Summary result = summarize(fold, labels, summary, stream);
  report_bad_label(result, labels, "V", stream);  // the fold, like a shard, cannot know V
  return {.loss_sum = result.loss_sum, .valid = result.valid};
}

void cross_entropy_shard_backward(const Tensor& x, const Tensor& emb_shard,
                                  std::int64_t vocab_begin, const Tensor& labels,
                                  const Tensor& lse, double grad_scale, Tensor* dx,
                                  Tensor* demb_shard, cudaStream_t stream) {
  if (!dx && !demb_shard) return;
  run_head_blocks(x, emb_shard,
                  {.labels = cptr<std::int32_t>(labels),
                   .shard = VocabShard::part(vocab_begin, emb_shard.dim(0)),
                   .grad_scale = static_cast<float>(grad_scale), .lse = cptr<double>(lse)},
                  dx, demb_shard, "cross_entropy_shard_backward", stream);
}

}  // namespace ratrain::cuda
