// The checks, row copies and stacks of sequence_rows.hpp.
#include "parallel/sequence_rows.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>

#include "runtime/index_tensors.hpp"

namespace ratrain {
namespace {

// Whether the storage types of the two backends hold `t`: host f32 / f64 (the CPU
// reference), device bf16 / f32 (the CUDA kernels).
bool supported_operand(const Tensor& t) {
  if (t.device() == Device::cpu) return t.dtype() == DType::f32 || t.dtype() == DType::f64;
  return t.dtype() == DType::bf16 || t.dtype() == DType::f32;
}

// The rows of a pair: both tensors (B, rows, H, dh) of one shape.
std::int64_t pair_rows(const TensorPair& pair) {
  RT_ASSERT(pair.first.rank() == 4 && pair.second.shape() == pair.first.shape());
  return pair.first.dim(1);
}

}  // namespace

void require_chunk_operands(int ranks, const Tensor& q, std::initializer_list<NamedTensor> like_q,
                            const char* op) {
  RT_REQUIRE(q.rank() == 4, op, ": q must be (B, Tc, H, dh), got ", shape_str(q.shape()));
  RT_REQUIRE(supported_operand(q), op,
             ": takes host f32 or f64 tensors or device bf16 or f32 tensors, got ",
             dtype_name(q.dtype()), " on ", device_name(q.device()));
  for (const NamedTensor& t : like_q) {
    require_shape(*t.tensor, q.shape(), (std::string(op) + ": " + t.name).c_str());
    require_same_type(q, {t.tensor}, op);
  }
  RT_REQUIRE(ranks * q.dim(1) <= std::numeric_limits<std::int32_t>::max(), op, ": ", ranks,
             " chunks of ", q.dim(1), " positions exceed the i32 key positions");
}

void copy_rows(const TensorPair& src, const std::vector<std::int64_t>& src_rows,
               const TensorPair& dst, const std::vector<std::int64_t>& dst_rows, Combine how) {
  RT_ASSERT(src_rows.size() == dst_rows.size());
  const std::int64_t count = std::int64_t(src_rows.size());
  if (count == 0) return;
  const std::int64_t src_len = pair_rows(src), dst_len = pair_rows(dst);
  // (2, N) i32: src_rows in row 0, dst_rows in row 1. The plan's lists are in range and
  // the destinations distinct by construction; checked here on the host, since the GPU
  // kernel does not check them.
  std::vector<std::int32_t> list(static_cast<std::size_t>(2 * count));
  for (std::int64_t n = 0; n < count; ++n) {
    RT_ASSERT(0 <= src_rows[n] && src_rows[n] < src_len && 0 <= dst_rows[n] &&
              dst_rows[n] < dst_len);
    list[n] = static_cast<std::int32_t>(src_rows[n]);
    list[count + n] = static_cast<std::int32_t>(dst_rows[n]);
  }
  std::vector<std::int32_t> sorted(list.begin() + count, list.end());
  std::sort(sorted.begin(), sorted.end());
  RT_ASSERT(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  const Tensor lists = index_tensor(list, src.first.device()).view({2, count});
  const Tensor from = lists.rows(0, 1).view({count}), to = lists.rows(1, 2).view({count});
  Tensor dst_first = dst.first, dst_second = dst.second;  // views: the pair's storage
  ops::copy_sequence_rows(src.first, from, dst_first, to, how);
  ops::copy_sequence_rows(src.second, from, dst_second, to, how);
}

std::vector<std::int64_t> indices_of(IndexRange range) {
  std::vector<std::int64_t> indices(static_cast<std::size_t>(range.size()));
  std::iota(indices.begin(), indices.end(), range.begin);
  return indices;
}

Tensor zero_stack(std::int64_t parts, const Tensor& like, std::int64_t rows) {
  return Tensor::zeros({parts, like.dim(0), rows, like.dim(2), like.dim(3)}, like.dtype(),
                       like.device());
}

Tensor stack_part(const Tensor& stack, std::int64_t index) {
  return stack.rows(index, index + 1).view(Shape(stack.shape().begin() + 1, stack.shape().end()));
}

TensorPair stack_pair(const Tensor& stack, std::int64_t first_part) {
  return {stack_part(stack, first_part), stack_part(stack, first_part + 1)};
}

Tensor position_tensor(const std::vector<std::int64_t>& positions, Device device) {
  std::vector<std::int32_t> values(positions.size());
  for (std::size_t n = 0; n < positions.size(); ++n) {
    RT_ASSERT(positions[n] <= std::numeric_limits<std::int32_t>::max());
    values[n] = static_cast<std::int32_t>(positions[n]);
  }
  return index_tensor(values, device);
}

}  // namespace ratrain
