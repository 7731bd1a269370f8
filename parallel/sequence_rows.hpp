// Operand checks, index ranges and buffers of sequence-parallel attention: (B, T, H, dh)
// tensors addressed by sequence row t (the (H, dh) block of position t in every sample),
// which travel in pairs (k and v, or dk and dv), and message buffers that stack them
// along a new leading dimension so that one send, all-gather or reduce-scatter moves
// them together.
//
// A stack (parts, B, T, H, dh) holds part p in its rows [p, p + 1); an all-gather of
// stacks over S ranks is a stack (S * parts, B, T, H, dh) whose part s * parts + p is
// part p of rank s.
//
// Tensors are contiguous (runtime/tensor.hpp), host f32 / f64 or device (CUDA) bf16 / f32,
// all of one dtype on one device; every buffer made here (stacks, positions, row lists)
// lives on the operands' device, so the same code runs on the CPU and on a GPU. The row
// lists are host vectors (the plan is host arithmetic); copy_rows checks them on the host
// and, for device tensors, uploads them once per call.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kernels/ops.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

// Requires the chunk operands of sequence-parallel attention over `ranks` ranks: q
// (B, Tc, H, dh) and every tensor of `like_q` of q's shape, of q's dtype and device (host
// f32 or f64, or device bf16 or f32), and the whole sequence's positions ranks * Tc within
// i32 (the ops' key positions). Checked alike on every rank before any exchange. (lse and
// the other statistics are the attention ops' to check: f32 on the GPU.)
struct NamedTensor {
  const Tensor* tensor;
  const char* name;
};
void require_chunk_operands(int ranks, const Tensor& q, std::initializer_list<NamedTensor> like_q,
                            const char* op);

// Two (B, *, H, dh) tensors with the same rows, moved together: k and v, or dk and dv.
struct TensorPair {
  Tensor first, second;
};

// Combine::assign or Combine::add, as ops::copy_sequence_rows takes it.
using Combine = ops::Combine;

// dst.x[b, dst_rows[n]] = src.x[b, src_rows[n]] (Combine::assign) or += (Combine::add),
// for x = first, second, every sample b and every n: two ops::copy_sequence_rows. The
// tensors share B, H, dh, dtype and device; src and dst do not overlap. The row lists
// are checked on the host (in range, dst rows distinct) and go to the tensors' device as
// one (2, n) i32 tensor, uploaded the first time a list occurs (runtime/index_tensors.hpp).
void copy_rows(const TensorPair& src, const std::vector<std::int64_t>& src_rows,
               const TensorPair& dst, const std::vector<std::int64_t>& dst_rows, Combine how);

// Indices [begin, end): positions of a range of the sequence, or rows of a buffer.
struct IndexRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};
// begin, begin + 1, ..., end - 1.
std::vector<std::int64_t> indices_of(IndexRange range);

// A zeroed stack (parts, B, rows, H, dh) with the B, H, dh, dtype and device of `like`
// (B, *, H, dh).
Tensor zero_stack(std::int64_t parts, const Tensor& like, std::int64_t rows);

// Part `index` of a stack (parts, ...) as a view of shape (...).
Tensor stack_part(const Tensor& stack, std::int64_t index);
// Parts first_part and first_part + 1 of a stack, as views.
TensorPair stack_pair(const Tensor& stack, std::int64_t first_part);

// The positions as an i32 tensor (n) on `device`, the key_positions of
// ops::attention_*_keys (on the device of their q, k, v); uploaded once per distinct list
// (runtime/index_tensors.hpp). Read-only.
Tensor position_tensor(const std::vector<std::int64_t>& positions, Device device);

}  // namespace ratrain
