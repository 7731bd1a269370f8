// Sequence row copies on the GPU (ops::copy_sequence_rows), same semantics as
// kernels/cpu/sequence_rows.cpp: for every sample b and n < N,
//   dst[b, dst_rows[n]] (=|+=) src[b, src_rows[n]],
// src (B, Ts, H, dh), dst (B, Td, H, dh) in one storage type (bf16 or f32), src_rows and
// dst_rows (N) i32 on the device.
//
// One thread per word of a destination row: a row of H * dh elements moves in the widest
// word (16, 8 or 4 bytes, else one element) that divides the row's bytes and both base
// addresses (stack_part views start at any row, so only the element size is certain).
// Adding unpacks a word into its elements and adds in fp32, rounding once to the storage
// type, exactly as the CPU reference does in f32 on the same values (a correctly rounded
// f32 sum, then round to nearest even for bf16): the two backends agree bitwise.
//
// The indices are not checked against Ts and Td (reading them back would synchronise the
// stream on every call; ops.hpp): a pair with an index out of range is skipped, so no
// memory outside the tensors is touched. Distinct dst rows make every word's writer
// unique, so no atomics are needed and the result does not depend on scheduling.
#include <cstdint>
#include <cstring>

#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_check.hpp"
#include "runtime/cuda_elementwise.cuh"

namespace ratrain::cuda {
namespace {

// Word i of the (B, N, words) destination words: dst[b, dst_rows[n]] word (=|+=) the same
// word of src[b, src_rows[n]], i = (b N + n) words + word. T the storage type, W the word
// (a whole number of T).
template <typename T, typename W, ops::Combine kHow>
struct CopyRowWords {
  static_assert(sizeof(W) % sizeof(T) == 0);

  const W* src;                  // (B, Ts, words)
  W* dst;                        // (B, Td, words)
  const std::int32_t* src_rows;  // (N)
  const std::int32_t* dst_rows;  // (N)
  std::int64_t count;            // N
  std::int64_t words;            // per row: H * dh * sizeof(T) / sizeof(W)
  std::int64_t src_len;          // Ts
  std::int64_t dst_len;          // Td

  __device__ void operator()(std::int64_t i) const {
    const std::int64_t pair = i / words, word = i - pair * words;  // pair = b N + n
    const std::int64_t b = pair / count, n = pair - b * count;
    const std::int32_t from = src_rows[n], to = dst_rows[n];
    if (from < 0 || from >= src_len || to < 0 || to >= dst_len) return;  // unchecked: skipped
    const W x = src[(b * src_len + from) * words + word];
    W* y = dst + (b * dst_len + to) * words + word;
    if constexpr (kHow == ops::Combine::assign) {
      *y = x;
    } else {
      constexpr int kLanes = static_cast<int>(sizeof(W) / sizeof(T));  // elements per word
      T sum[kLanes], term[kLanes];
      const W old = *y;
      std::memcpy(sum, &old, sizeof(W));
      std::memcpy(term, &x, sizeof(W));
#pragma unroll
      for (int lane = 0; lane < kLanes; ++lane)
        sum[lane] = from_float<T>(to_float(sum[lane]) + to_float(term[lane]));
      W updated;
      std::memcpy(&updated, sum, sizeof(W));
      *y = updated;
    }
  }
};

template <typename T, typename W, ops::Combine kHow>
void launch_copy_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                      const Tensor& dst_rows, std::int64_t row_bytes, cudaStream_t stream) {
  const std::int64_t words = row_bytes / static_cast<std::int64_t>(sizeof(W));
  const std::int64_t count = src_rows.numel();
  launch_elementwise(
      CopyRowWords<T, W, kHow>{.src = cptr<W>(src), .dst = ptr<W>(dst),
                               .src_rows = cptr<std::int32_t>(src_rows),
                               .dst_rows = cptr<std::int32_t>(dst_rows), .count = count,
                               .words = words, .src_len = src.dim(1), .dst_len = dst.dim(1)},
      src.dim(0) * count * words, stream);
}

template <typename T, typename W>
void launch_copy_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                      const Tensor& dst_rows, ops::Combine how, std::int64_t row_bytes,
                      cudaStream_t stream) {
  if (how == ops::Combine::add)
    launch_copy_rows<T, W, ops::Combine::add>(src, src_rows, dst, dst_rows, row_bytes, stream);
  else
    launch_copy_rows<T, W, ops::Combine::assign>(src, src_rows, dst, dst_rows, row_bytes, stream);
}

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

void copy_sequence_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                        const Tensor& dst_rows, ops::Combine how, cudaStream_t stream) {
  const auto row_bytes =
      static_cast<std::int64_t>(src.dim(2) * src.dim(3) * dtype_size(src.dtype()));  // H dh
  if (src.dim(0) == 0 || src_rows.numel() == 0 || row_bytes == 0) return;
  // The widest word dividing the row and both addresses.
  const auto fits = [&](std::int64_t w) {
    return row_bytes % w == 0 && address(src.raw()) % w == 0 && address(dst.raw()) % w == 0;
  };
  dispatch_storage(src, "copy_sequence_rows", [&](auto tag) {
    using T = decltype(tag);
    if (fits(16))
      launch_copy_rows<T, uint4>(src, src_rows, dst, dst_rows, how, row_bytes, stream);
    else if (fits(8))
      launch_copy_rows<T, uint2>(src, src_rows, dst, dst_rows, how, row_bytes, stream);
    else if (fits(4))
      launch_copy_rows<T, std::uint32_t>(src, src_rows, dst, dst_rows, how, row_bytes, stream);
    else  // bf16 only: f32 rows and addresses always take 4-byte words
      launch_copy_rows<T, T>(src, src_rows, dst, dst_rows, how, row_bytes, stream);
  });
}

}  // namespace ratrain::cuda
