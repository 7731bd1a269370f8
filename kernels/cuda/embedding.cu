// Token embedding on the GPU: the gather out[n] = emb[ids[n]] and its gradient
// demb[v] += sum over {n : ids[n] = v} of dout[n], same semantics as kernels/cpu/embedding.cpp.
// ids (N) i32; emb (V, C), out and dout (N, C) in one storage type (bf16 or f32);
// demb (V, C) f32, accumulated.
//
// Vocab shards: every kernel works on a VocabShard (vocab_shard.cuh), rows [begin,
// begin + Vs) of the table; the full-table ops pass the whole table. An id the shard does
// not hold gives a zero row forward and nothing backward.
//
// Forward: a pure copy, so it moves bytes in the widest word (16, 8, 4 or 2 bytes) that
// divides a row and both base addresses (views made by Tensor::rows may start anywhere).
//
// Backward, deterministic (no floating-point atomics): the positions 0..N-1 are sorted
// by id with cub's radix sort, which is stable, so the rows of one id follow each other
// in ascending position order. The first sorted entry of each id (a "run start") owns
// that id: its block walks the run and adds the rows in that fixed order in fp32, one
// thread per column, then adds the sum into demb once. Every (id, column) has exactly
// one writer, so the result never depends on scheduling. A very frequent id makes one
// long run for one block (per column tile); its rows are loaded a chunk at a time, so
// even a run of thousands of rows costs tens of microseconds, far below the head GEMMs.
//
// Invalid ids: an id outside [0, V) (for a shard, which cannot know V: a negative id) must
// fail naming the id and its position, like the CPU backend. Kernels skip such rows and
// atomicMin their position into one device word (integer atomics: the minimum is
// order-independent); the launcher reads the word back with one small synchronous copy.
// That sync per call is acceptable for now; checking ids on the host when a batch is
// loaded would remove it.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "kernels/cuda/cuda_ops.hpp"
#include "runtime/cuda_elementwise.cuh"
#include "kernels/cuda/storage.cuh"
#include "kernels/cuda/vocab_shard.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

struct EmbeddingLaunch {
  // Backward: one thread per column of a tile, and the entries of a run read per chunk.
  static constexpr int kColumnsPerBlock = 128;
  // Backward blocks along the sorted positions; a block visits positions blockIdx.x,
  // blockIdx.x + gridDim.x, ... and works only at run starts, so runs are dealt out
  // round-robin and most visits are two integer loads.
  static constexpr unsigned kMaxRunBlocks = 2048;
};

// The "no bad id" value of the first-bad-position word: every position is smaller.
constexpr unsigned long long kNoBadPosition = ~0ull;

// out (N, words) = table (Vs, words) rows ids[n] - shard.begin, zeros where the shard does
// not hold ids[n]; one element per word of W bytes (all-zero bits are 0 in bf16 and f32).
template <typename W>
struct GatherRows {
  const std::int32_t* ids;         // (N)
  const W* table;                  // (Vs, words)
  W* out;                          // (N, words)
  std::int64_t words;              // per row
  VocabShard shard;
  unsigned long long* first_bad;   // smallest position of a bad id
  __device__ void operator()(std::int64_t i) const {
    const std::int64_t position = i / words, word = i - position * words;
    const std::int32_t id = ids[position];
    if (shard.is_bad(id)) {
      if (word == 0) atomicMin(first_bad, static_cast<unsigned long long>(position));
      return;
    }
    const std::int64_t row = shard.row_of(id);
    out[i] = row >= 0 ? table[row * words + word] : W{};
  }
};

// positions[i] = i: the values sorted along with the ids.
struct Iota {
  std::int32_t* positions;  // (N)
  __device__ void operator()(std::int64_t i) const { positions[i] = static_cast<std::int32_t>(i); }
};

// demb[id - shard.begin] += rows of dout of one id the shard holds, summed in position
// order; runs of other shards' ids are skipped at their start. sorted_ids (N) ascending,
// positions (N) the dout row of each sorted entry; blockIdx.y picks a tile of columns,
// blockDim.x == kColumnsPerBlock. A run is taken kColumnsPerBlock entries at a time: the
// block stages the chunk's positions in shared memory, so that the row loads of a chunk
// are independent of each other and can be in flight together; the fp32 adds stay in
// position order.
template <typename T>
__global__ void accumulate_runs_kernel(const std::int32_t* sorted_ids,
                                       const std::int32_t* positions, std::int64_t n,
                                       const T* dout, float* demb, std::int64_t columns,
                                       VocabShard shard, unsigned long long* first_bad) {
  constexpr int kChunk = EmbeddingLaunch::kColumnsPerBlock;
  __shared__ std::int32_t chunk_positions[kChunk];
  const std::int64_t c = blockIdx.y * std::int64_t{kChunk} + threadIdx.x;
  // start, id and every branch below are the same in all threads of the block, so the
  // barriers are reached by all of them.
  for (std::int64_t start = blockIdx.x; start < n; start += gridDim.x) {
    const std::int32_t id = sorted_ids[start];
    if (start > 0 && sorted_ids[start - 1] == id) continue;  // not the first of its run
    if (shard.is_bad(id)) {
      // The run's first entry holds the id's smallest position (the sort is stable).
      if (c == 0) atomicMin(first_bad, static_cast<unsigned long long>(positions[start]));
      continue;
    }
    const std::int64_t row = shard.row_of(id);
    if (row < 0) continue;  // another shard's id
    float acc = 0;
    for (std::int64_t base = start;; base += kChunk) {
      const std::int64_t i = base + threadIdx.x;
      const bool in_run = i < n && sorted_ids[i] == id;
      __syncthreads();  // every thread is done with the previous chunk's positions
      chunk_positions[threadIdx.x] = in_run ? positions[i] : 0;
      // Equal ids are contiguous and the chunk starts inside the run, so the entries in
      // the run are a prefix of the chunk and their count is its length.
      const int length = __syncthreads_count(in_run);
      if (c < columns) {
#pragma unroll 8
        for (int k = 0; k < length; ++k) acc += to_float(dout[chunk_positions[k] * columns + c]);
      }
      if (length < kChunk) break;
    }
    if (c < columns) demb[row * columns + c] += acc;
  }
}

// A device word holding the first bad position, set to kNoBadPosition on `stream`.
// (8 bytes as two i32: Tensor has no 64-bit integer dtype.)
Tensor first_bad_word(cudaStream_t stream) {
  Tensor word = Tensor::empty({2}, DType::i32, Device::cuda);
  RT_CHECK_CUDA(cudaMemsetAsync(word.raw(), 0xFF, sizeof(unsigned long long), stream));
  return word;
}
unsigned long long* first_bad_ptr(const Tensor& word) {
  return static_cast<unsigned long long*>(word.raw());
}

// Waits for `stream` and fails, as the CPU backend does, if a kernel recorded a bad id.
void report_bad_id(const Tensor& word, const Tensor& ids, const VocabShard& shard,
                   cudaStream_t stream) {
  unsigned long long position = kNoBadPosition;
  RT_CHECK_CUDA(cudaMemcpyAsync(&position, word.raw(), sizeof position, cudaMemcpyDeviceToHost,
                                stream));
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  if (position == kNoBadPosition) return;
  std::int32_t id = 0;
  RT_CHECK_CUDA(cudaMemcpyAsync(&id, cptr<std::int32_t>(ids) + position, sizeof id,
                                cudaMemcpyDeviceToHost, stream));
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  RT_REQUIRE(!shard.is_bad(id), "token id ", id, " at position ", position,
             " is outside the vocabulary [0, ", shard.vocab_name(), ")");
}

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

template <typename W>
void launch_gather(const Tensor& ids, const Tensor& emb, const VocabShard& shard, Tensor& out,
                   std::int64_t row_bytes, unsigned long long* first_bad, cudaStream_t stream) {
  const std::int64_t words = row_bytes / static_cast<std::int64_t>(sizeof(W));
  launch_elementwise(GatherRows<W>{.ids = cptr<std::int32_t>(ids), .table = cptr<W>(emb),
                                   .out = ptr<W>(out), .words = words, .shard = shard,
                                   .first_bad = first_bad},
                     ids.dim(0) * words, stream);
}

// out = emb rows of ids (zeros for ids the shard does not hold); emb (Vs, C) is the shard.
void gather_shard_rows(const Tensor& ids, const Tensor& emb, const VocabShard& shard, Tensor& out,
                       cudaStream_t stream) {
  const std::int64_t n = ids.dim(0);
  const auto row_bytes = static_cast<std::int64_t>(emb.dim(1) * dtype_size(emb.dtype()));
  if (n == 0 || row_bytes == 0) return;
  const Tensor bad = first_bad_word(stream);
  // The widest word dividing the row and both addresses (f32 rows always take 4 bytes).
  auto fits = [&](std::int64_t w) {
    return row_bytes % w == 0 && address(emb.raw()) % w == 0 && address(out.raw()) % w == 0;
  };
  unsigned long long* first_bad = first_bad_ptr(bad);
  if (fits(16))
    launch_gather<uint4>(ids, emb, shard, out, row_bytes, first_bad, stream);
  else if (fits(8))
    launch_gather<uint2>(ids, emb, shard, out, row_bytes, first_bad, stream);
  else if (fits(4))
    launch_gather<std::uint32_t>(ids, emb, shard, out, row_bytes, first_bad, stream);
  else
    launch_gather<std::uint16_t>(ids, emb, shard, out, row_bytes, first_bad, stream);
  report_bad_id(bad, ids, shard, stream);
}

// The positions 0..N-1 sorted by their id, stably. (N) i32 each.
struct SortedIds {
  Tensor ids;
  Tensor positions;
};

SortedIds sort_by_id(const Tensor& ids, cudaStream_t stream) {
  const std::int64_t n = ids.dim(0);
  // Sort (id, position) pairs by id over all 32 bits, so that even invalid (negative or
  // too large) ids form runs of their own and a valid id's run is never split.
  const Tensor positions = Tensor::empty({n}, DType::i32, Device::cuda);  // (N) 0..N-1
  SortedIds sorted{.ids = Tensor::empty({n}, DType::i32, Device::cuda),
                   .positions = Tensor::empty({n}, DType::i32, Device::cuda)};
  launch_elementwise(Iota{ptr<std::int32_t>(positions)}, n, stream);
  std::size_t temp_bytes = 0;
  RT_CHECK_CUDA(cub::DeviceRadixSort::SortPairs(
      nullptr, temp_bytes, cptr<std::int32_t>(ids), ptr<std::int32_t>(sorted.ids),
      cptr<std::int32_t>(positions), ptr<std::int32_t>(sorted.positions), n, 0, 32, stream));
  // cub's scratch, in i32 elements (at least one, so that its pointer is never null:
  // a null pointer would make cub only report the size again).
  const Tensor temp = Tensor::empty(
      {std::max<std::int64_t>(1, static_cast<std::int64_t>((temp_bytes + 3) / 4))}, DType::i32,
      Device::cuda);
  RT_CHECK_CUDA(cub::DeviceRadixSort::SortPairs(
      temp.raw(), temp_bytes, cptr<std::int32_t>(ids), ptr<std::int32_t>(sorted.ids),
      cptr<std::int32_t>(positions), ptr<std::int32_t>(sorted.positions), n, 0, 32, stream));
  return sorted;
}

// demb (Vs, C) += the rows of dout of the ids the shard holds, deterministically.
void scatter_add_shard_rows(const Tensor& ids, const Tensor& dout, const VocabShard& shard,
                            Tensor& demb, const char* op, cudaStream_t stream) {
  const std::int64_t n = ids.dim(0), columns = demb.dim(1);
  if (n == 0 || columns == 0) return;
  RT_REQUIRE(n <= INT32_MAX, op, ": ", n, " positions exceed the i32 sort values");
  const auto column_tiles = static_cast<unsigned>(
      (columns + EmbeddingLaunch::kColumnsPerBlock - 1) / EmbeddingLaunch::kColumnsPerBlock);
  RT_REQUIRE(column_tiles <= 65535u, op, ": ", columns, " columns exceed the grid");

  const SortedIds sorted = sort_by_id(ids, stream);
  const Tensor bad = first_bad_word(stream);
  const dim3 grid(static_cast<unsigned>(std::min<std::int64_t>(n, EmbeddingLaunch::kMaxRunBlocks)),
                  column_tiles);
  dispatch_storage(dout, op, [&](auto tag) {
    using T = decltype(tag);
    accumulate_runs_kernel<T><<<grid, EmbeddingLaunch::kColumnsPerBlock, 0, stream>>>(
        cptr<std::int32_t>(sorted.ids), cptr<std::int32_t>(sorted.positions), n, cptr<T>(dout),
        ptr<float>(demb), columns, shard, first_bad_ptr(bad));
    RT_CHECK_LAUNCH();
  });
  report_bad_id(bad, ids, shard, stream);
}

}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& emb, Tensor& out, cudaStream_t stream) {
  gather_shard_rows(ids, emb, VocabShard::whole(emb.dim(0)), out, stream);
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& demb, cudaStream_t stream) {
  scatter_add_shard_rows(ids, dout, VocabShard::whole(demb.dim(0)), demb, "embedding_backward",
                         stream);
}

void embedding_shard_forward(const Tensor& ids, const Tensor& emb_shard, std::int64_t vocab_begin,
                             Tensor& out, cudaStream_t stream) {
  gather_shard_rows(ids, emb_shard, VocabShard::part(vocab_begin, emb_shard.dim(0)), out, stream);
}

void embedding_shard_backward(const Tensor& ids, const Tensor& dout, std::int64_t vocab_begin,
                              Tensor& demb_shard, cudaStream_t stream) {
  scatter_add_shard_rows(ids, dout, VocabShard::part(vocab_begin, demb_shard.dim(0)), demb_shard,
                         "embedding_shard_backward", stream);
}

}  // namespace ratrain::cuda
