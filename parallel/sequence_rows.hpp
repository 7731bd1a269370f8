// Operand checks, index ranges and buffers of sequence-parallel attention: (B, T, H, dh)
// tensors addressed by sequence row t (the (H, dh) block of position t in every sample),
// which travel in pairs (k and v, or dk and dv), and message buffers that stack them
// along a new leading dimension so that one send, all-gather or reduce-scatter moves
// them together.
//
// A stack (parts, B, T, H, dh) holds part p in its rows [p, p + 1); an all-gather of
// stacks over S ranks is a stack (S * parts, B, T, H, dh) whose part s * parts + p is
// part p of rank s. Host f32 or f64 tensors, contiguous (runtime/tensor.hpp).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "runtime/tensor.hpp"

namespace ratrain {

// Requires the chunk operands of sequence-parallel attention over `ranks` ranks: q
// (B, Tc, H, dh) and every tensor of `like_q` of q's shape, all host f32 or f64 of one
// dtype, and the whole sequence's positions ranks * Tc within i32 (the ops' key
// positions). Checked alike on every rank before any exchange.
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

enum class Combine { assign, add };

// dst.x[b, dst_rows[n]] = src.x[b, src_rows[n]] (Combine::assign) or += (Combine::add),
// for x = first, second, every sample b and every n. The tensors share B, H, dh, dtype.
void copy_rows(const TensorPair& src, const std::vector<std::int64_t>& src_rows,
               const TensorPair& dst, const std::vector<std::int64_t>& dst_rows, Combine how);

// Indices [begin, end): positions of a range of the sequence, or rows of a buffer.
struct IndexRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};
// begin, begin + 1, ..., end - 1.
std::vector<std::int64_t> indices_of(IndexRange range);

// A zeroed stack (parts, B, rows, H, dh) with the B, H, dh and dtype of `like`
// (B, *, H, dh).
Tensor zero_stack(std::int64_t parts, const Tensor& like, std::int64_t rows);

// Part `index` of a stack (parts, ...) as a view of shape (...).
Tensor stack_part(const Tensor& stack, std::int64_t index);
// Parts first_part and first_part + 1 of a stack, as views.
TensorPair stack_pair(const Tensor& stack, std::int64_t first_part);

// The positions as an i32 tensor (n), the key_positions of ops::attention_*_keys.
Tensor position_tensor(const std::vector<std::int64_t>& positions);

}  // namespace ratrain
