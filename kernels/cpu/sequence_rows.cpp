// Sequence row copies (ops::copy_sequence_rows): src (B, Ts, H, dh) rows src_rows[n] into
// dst (B, Td, H, dh) rows dst_rows[n], assigned or added, for every sample. Every index is
// checked (in range; dst rows distinct) before any row is touched, so a bad list leaves
// dst as it was. The (sample, row) pairs are then independent: distinct dst rows, and
// src does not overlap dst (checked by the dispatch).
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

constexpr const char* kOp = "copy_sequence_rows";

// Requires every index in [0, rows); names the list, the entry and the range.
void check_in_range(const Tensor& indices, std::int64_t rows, const char* list, const char* of) {
  const std::int32_t* index = indices.data<std::int32_t>();
  for (std::int64_t n = 0; n < indices.numel(); ++n)
    RT_REQUIRE(index[n] >= 0 && index[n] < rows, kOp, ": ", list, "[", n, "] = ", index[n],
               " is outside the ", of, " rows [0, ", rows, ")");
}

// Requires dst_rows pairwise distinct (already in [0, rows)).
void check_distinct(const Tensor& dst_rows, std::int64_t rows) {
  const std::int32_t* index = dst_rows.data<std::int32_t>();
  std::vector<std::int64_t> first(static_cast<std::size_t>(rows), -1);  // entry per row
  for (std::int64_t n = 0; n < dst_rows.numel(); ++n) {
    std::int64_t& seen = first[static_cast<std::size_t>(index[n])];
    RT_REQUIRE(seen < 0, kOp, ": dst_rows[", n, "] = ", index[n], " repeats dst_rows[", seen,
               "]; each destination row may be written once");
    seen = n;
  }
}

}  // namespace

template <typename T>
void copy_sequence_rows(const Tensor& src, const Tensor& src_rows, Tensor& dst,
                        const Tensor& dst_rows, ops::Combine how) {
  const std::int64_t batch = src.dim(0), src_len = src.dim(1), dst_len = dst.dim(1);
  const std::int64_t count = src_rows.numel(), row = src.dim(2) * src.dim(3);  // N, H * dh
  check_in_range(src_rows, src_len, "src_rows", "source");
  check_in_range(dst_rows, dst_len, "dst_rows", "destination");
  check_distinct(dst_rows, dst_len);
  const std::int32_t* from_row = src_rows.data<std::int32_t>();
  const std::int32_t* to_row = dst_rows.data<std::int32_t>();
  const T* x = src.data<T>();
  T* y = dst.data<T>();
#pragma omp parallel for collapse(2) if (batch * count * row > (1 << 16))
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t n = 0; n < count; ++n) {
      const T* from = x + (b * src_len + from_row[n]) * row;
      T* to = y + (b * dst_len + to_row[n]) * row;
      if (how == ops::Combine::add)
        for (std::int64_t e = 0; e < row; ++e) to[e] = to[e] + from[e];
      else
        std::copy_n(from, row, to);
    }
}

template void copy_sequence_rows<float>(const Tensor&, const Tensor&, Tensor&, const Tensor&,
                                        ops::Combine);
template void copy_sequence_rows<double>(const Tensor&, const Tensor&, Tensor&, const Tensor&,
                                         ops::Combine);

}  // namespace ratrain::cpu
