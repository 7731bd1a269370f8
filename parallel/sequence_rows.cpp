// The checks, row copies and stacks of sequence_rows.hpp.
#include "parallel/sequence_rows.hpp"

#include <limits>
#include <numeric>
#include <string>

namespace ratrain {
namespace {

// dst[b, dst_row] (=|+=) src[b, src_row] for every sample b.
template <typename T>
void copy_row(const Tensor& src, std::int64_t src_row, const Tensor& dst, std::int64_t dst_row,
              Combine how) {
  RT_ASSERT(0 <= src_row && src_row < src.dim(1) && 0 <= dst_row && dst_row < dst.dim(1));
  const std::int64_t row_size = src.dim(2) * src.dim(3);  // H * dh
  for (std::int64_t b = 0; b < src.dim(0); ++b) {
    const T* from = src.data<T>() + (b * src.dim(1) + src_row) * row_size;
    T* to = dst.data<T>() + (b * dst.dim(1) + dst_row) * row_size;
    for (std::int64_t e = 0; e < row_size; ++e)
      to[e] = how == Combine::add ? to[e] + from[e] : from[e];
  }
}

template <typename T>
void copy_rows_of(const Tensor& src, const std::vector<std::int64_t>& src_rows, const Tensor& dst,
                  const std::vector<std::int64_t>& dst_rows, Combine how) {
  RT_ASSERT(src.rank() == 4 && dst.rank() == 4 && src.dim(0) == dst.dim(0) &&
            src.dim(2) == dst.dim(2) && src.dim(3) == dst.dim(3) && src.dtype() == dst.dtype());
  for (std::size_t n = 0; n < src_rows.size(); ++n)
    copy_row<T>(src, src_rows[n], dst, dst_rows[n], how);
}

}  // namespace

void require_chunk_operands(int ranks, const Tensor& q, std::initializer_list<NamedTensor> like_q,
                            const char* op) {
  RT_REQUIRE(q.rank() == 4, op, ": q must be (B, Tc, H, dh), got ", shape_str(q.shape()));
  RT_REQUIRE(q.device() == Device::cpu && (q.dtype() == DType::f32 || q.dtype() == DType::f64),
             op, ": takes host f32 or f64 tensors (MPI groups, CPU attention ops), got ",
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
  const auto copy_one = [&](const Tensor& from, const Tensor& to) {
    if (from.dtype() == DType::f64)
      copy_rows_of<double>(from, src_rows, to, dst_rows, how);
    else
      copy_rows_of<float>(from, src_rows, to, dst_rows, how);
  };
  copy_one(src.first, dst.first);
  copy_one(src.second, dst.second);
}

std::vector<std::int64_t> indices_of(IndexRange range) {
  std::vector<std::int64_t> indices(static_cast<std::size_t>(range.size()));
  std::iota(indices.begin(), indices.end(), range.begin);
  return indices;
}

Tensor zero_stack(std::int64_t parts, const Tensor& like, std::int64_t rows) {
  return Tensor::zeros({parts, like.dim(0), rows, like.dim(2), like.dim(3)}, like.dtype());
}

Tensor stack_part(const Tensor& stack, std::int64_t index) {
  return stack.rows(index, index + 1).view(Shape(stack.shape().begin() + 1, stack.shape().end()));
}

TensorPair stack_pair(const Tensor& stack, std::int64_t first_part) {
  return {stack_part(stack, first_part), stack_part(stack, first_part + 1)};
}

Tensor position_tensor(const std::vector<std::int64_t>& positions) {
  Tensor t = Tensor::empty({std::int64_t(positions.size())}, DType::i32);
  for (std::size_t n = 0; n < positions.size(); ++n) {
    RT_ASSERT(positions[n] <= std::numeric_limits<std::int32_t>::max());
    t.data<std::int32_t>()[n] = static_cast<std::int32_t>(positions[n]);
  }
  return t;
}

}  // namespace ratrain
