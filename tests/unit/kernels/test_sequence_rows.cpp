// ops::copy_sequence_rows on the CPU: assigned and added rows against a naive loop (exact:
// the op does the same one operation per element in the same type), rows outside the
// lists untouched, and the checks: shapes, dtypes, index tensors, indices out of range,
// repeated destination rows and overlapping storage, each an error that leaves dst as
// it was. Row size H * dh = 15 and Ts != Td, so a mixed-up stride shows.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

constexpr std::int64_t kBatch = 2, kSrcRows = 7, kDstRows = 9, kHeads = 3, kDh = 5;

Shape src_shape() { return {kBatch, kSrcRows, kHeads, kDh}; }
Shape dst_shape() { return {kBatch, kDstRows, kHeads, kDh}; }

const std::vector<std::int32_t> kFrom = {4, 0, 6, 2}, kTo = {8, 2, 3, 0};

// dst[b, to[n]] (=|+=) src[b, from[n]] in T, element by element.
template <typename T>
Tensor naive(const Tensor& src, const std::vector<std::int32_t>& from, const Tensor& dst,
             const std::vector<std::int32_t>& to, ops::Combine how) {
  Tensor expected = test::clone(dst);
  const std::int64_t row = kHeads * kDh;
  for (std::int64_t b = 0; b < kBatch; ++b)
    for (std::size_t n = 0; n < from.size(); ++n)
      for (std::int64_t e = 0; e < row; ++e) {
        const T x = src.data<T>()[(b * src.dim(1) + from[n]) * row + e];
        T& y = expected.data<T>()[(b * dst.dim(1) + to[n]) * row + e];
        y = how == ops::Combine::add ? T(y + x) : x;
      }
  return expected;
}

template <typename T>
void expect_matches_naive(ops::Combine how) {
  const DType dtype = dtype_of<T>();
  const Tensor src = test::random_tensor(src_shape(), "src", 1.0, dtype);
  Tensor dst = test::random_tensor(dst_shape(), "dst", 1.0, dtype);
  const Tensor expected = naive<T>(src, kFrom, dst, kTo, how);
  ops::copy_sequence_rows(src, test::int_tensor(kFrom), dst, test::int_tensor(kTo), how);
  EXPECT_EQ(test::max_abs_diff(dst, expected), 0.0) << dtype_name(dtype);
}

TEST(CopySequenceRows, AssignsTheListedRowsOfEverySample) {
  expect_matches_naive<float>(ops::Combine::assign);
  expect_matches_naive<double>(ops::Combine::assign);
}

TEST(CopySequenceRows, AddsTheListedRowsOfEverySample) {
  expect_matches_naive<float>(ops::Combine::add);
  expect_matches_naive<double>(ops::Combine::add);
}

TEST(CopySequenceRows, EmptyListsLeaveDstAsItWas) {
  const Tensor src = test::random_tensor(src_shape(), "src");
  Tensor dst = test::random_tensor(dst_shape(), "dst");
  const Tensor before = test::clone(dst);
  ops::copy_sequence_rows(src, test::int_tensor({}), dst, test::int_tensor({}),
                          ops::Combine::add);
  EXPECT_EQ(test::max_abs_diff(dst, before), 0.0);
}

// The error of a copy with these row lists; dst must come out unchanged.
std::string error_with_rows(const std::vector<std::int32_t>& from,
                            const std::vector<std::int32_t>& to) {
  const Tensor src = test::random_tensor(src_shape(), "src");
  Tensor dst = test::random_tensor(dst_shape(), "dst");
  const Tensor before = test::clone(dst);
  const std::string error = error_of([&] {
    ops::copy_sequence_rows(src, test::int_tensor(from), dst, test::int_tensor(to),
                            ops::Combine::assign);
  });
  EXPECT_EQ(test::max_abs_diff(dst, before), 0.0) << "dst changed before the error: " << error;
  return error;
}

TEST(CopySequenceRows, RejectsIndicesOutOfRangeBeforeTouchingDst) {
  std::string error = error_with_rows({1, kSrcRows}, {0, 1});
  EXPECT_NE(error.find("src_rows[1] = 7 is outside the source rows [0, 7)"), std::string::npos)
      << error;
  error = error_with_rows({1, 2}, {0, -1});
  EXPECT_NE(error.find("dst_rows[1] = -1 is outside the destination rows [0, 9)"),
            std::string::npos)
      << error;
  error = error_with_rows({0}, {kDstRows});
  EXPECT_NE(error.find("dst_rows[0] = 9"), std::string::npos) << error;
}

TEST(CopySequenceRows, RejectsARepeatedDestinationRow) {
  const std::string error = error_with_rows({0, 1, 2}, {5, 3, 5});
  EXPECT_NE(error.find("dst_rows[2] = 5 repeats dst_rows[0]"), std::string::npos) << error;
}

// The error of an assigning copy.
std::string copy_error(const Tensor& src, const Tensor& src_rows, Tensor dst,
                       const Tensor& dst_rows) {
  return error_of(
      [&] { ops::copy_sequence_rows(src, src_rows, dst, dst_rows, ops::Combine::assign); });
}

TEST(CopySequenceRows, RejectsMismatchedOperands) {
  const Tensor src = test::random_tensor(src_shape(), "src");
  const Tensor dst = Tensor::zeros(dst_shape(), DType::f64);
  const Tensor rows = test::int_tensor({0, 1});
  const auto expect_error = [](const std::string& error, const std::string& part) {
    EXPECT_NE(error.find(part), std::string::npos) << error;
  };
  expect_error(copy_error(src, rows, Tensor::zeros({kBatch, kDstRows, kHeads, kDh + 1},
                                                   DType::f64), rows),
               "must share B, H and dh");
  expect_error(copy_error(src, rows, Tensor::zeros({kBatch + 1, kDstRows, kHeads, kDh},
                                                   DType::f64), rows),
               "must share B, H and dh");
  expect_error(copy_error(src, rows, Tensor::zeros(dst_shape(), DType::f32), rows),
               "operands mix f64/cpu with f32/cpu");
  expect_error(copy_error(src, rows, dst, test::int_tensor({0})),
               "dst_rows has shape (1), expected (2)");
  expect_error(copy_error(src, rows.to(DType::f64), dst, rows), "src_rows must be i32");
  expect_error(copy_error(src.to(DType::bf16), rows, Tensor::zeros(dst_shape(), DType::bf16),
                          rows),
               "supports f32 and f64, got bf16");
}

TEST(CopySequenceRows, RejectsOverlappingStorage) {
  // src and dst: two views of one (2, B, 7, H, dh) stack, overlapping by one sample.
  const Tensor stack = test::random_tensor({2 * kBatch * kSrcRows * kHeads * kDh}, "stack");
  const std::int64_t sample = kSrcRows * kHeads * kDh;
  const Tensor src = stack.flat_view(0, src_shape());
  Tensor dst = stack.flat_view(sample, src_shape());
  const std::string error = error_of([&] {
    ops::copy_sequence_rows(src, test::int_tensor({0}), dst, test::int_tensor({1}),
                            ops::Combine::assign);
  });
  EXPECT_NE(error.find("share storage"), std::string::npos) << error;
  // Adjacent views do not overlap.
  Tensor next = stack.flat_view(kBatch * sample, src_shape());
  ops::copy_sequence_rows(src, test::int_tensor({0}), next, test::int_tensor({1}),
                          ops::Combine::assign);
}

}  // namespace
}  // namespace ratrain
