// Batches: ids/labels with the label after EOS masked, sample boundaries, errors.
#include <gtest/gtest.h>

#include "io/batch.hpp"
#include "io_test_util.hpp"

namespace ratrain {
namespace {

using ::ratrain::error_of;
using test::expect_contains;
using test::TempDir;

Tensor rows_of(const std::vector<std::vector<std::int32_t>>& rows) {
  Tensor t = Tensor::empty(
      {static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(rows[0].size())},
      DType::i32);
  std::int32_t* out = t.data<std::int32_t>();
  for (const auto& row : rows) out = std::copy(row.begin(), row.end(), out);
  return t;
}

std::vector<std::int32_t> values(const Tensor& t) {
  const std::int32_t* p = t.data<std::int32_t>();
  return {p, p + t.numel()};
}

TEST(Batch, LabelAfterEosIsIgnored) {
  // The worked example of batch.hpp, plus a row that starts and ends with EOS (id 2).
  const Tensor rows = rows_of({{10, 11, 2, 12, 13}, {2, 14, 15, 2, 16}});
  const Batch batch = batch_from_rows(rows, 2);
  EXPECT_EQ(batch.ids.shape(), (Shape{2, 4}));
  EXPECT_EQ(batch.labels.shape(), (Shape{2, 4}));
  EXPECT_EQ(values(batch.ids), (std::vector<std::int32_t>{10, 11, 2, 12, 2, 14, 15, 2}));
  EXPECT_EQ(values(batch.labels), (std::vector<std::int32_t>{11, 2, -100, 13, -100, 15, 2, -100}));
}

TEST(Batch, NegativeEosDisablesMasking) {
  const Batch batch = batch_from_rows(rows_of({{10, 2, 12}}), -1);
  EXPECT_EQ(values(batch.labels), (std::vector<std::int32_t>{2, 12}));
}

TEST(Batch, RejectsBadRows) {
  expect_contains(error_of([] {
                    batch_from_rows(Tensor::empty({2, 5}, DType::f32), 2);
                  }),
                  {"(B, T+1)", "f32"});
  expect_contains(error_of([] {
                    batch_from_rows(Tensor::empty({2, 1}, DType::i32), 2);
                  }),
                  {"(2, 1)"});
}

class BatchFromFile : public ::testing::Test {
 protected:
  void SetUp() override {
    for (std::int32_t i = 0; i < 21; ++i) tokens_.push_back(i % 5 == 4 ? 2 : 3 + i);
    write_token_file(path_, tokens_, 259, 2, "byte");
  }
  TempDir dir_;
  const std::string path_ = dir_.file("tokens.h5");
  std::vector<std::int32_t> tokens_;  // 21 tokens, EOS (2) at positions 4, 9, 14, 19
};

TEST_F(BatchFromFile, NumSamples) {
  const TokenDataset data = TokenDataset::open(path_);
  EXPECT_EQ(num_samples(data, 4), 5);   // (21 - 1) / 4
  EXPECT_EQ(num_samples(data, 3), 6);   // (21 - 1) / 3
  EXPECT_EQ(num_samples(data, 20), 1);  // exactly T + 1 tokens
  expect_contains(error_of([&] { num_samples(data, 21); }),
                  {path_, "holds 21 tokens", "seq_len + 1 = 22"});
}

TEST_F(BatchFromFile, SampleSCoversTokensFromSTimesT) {
  const TokenDataset data = TokenDataset::open(path_);
  const std::int64_t T = 4;
  const SampleOrder order(num_samples(data, T), 99);
  const std::int64_t first = 3, batch_size = 4;  // crosses into the second epoch
  const Batch batch = make_batch(data, order, first, batch_size, T, data.eos_id());
  ASSERT_EQ(batch.ids.shape(), (Shape{batch_size, T}));
  for (std::int64_t b = 0; b < batch_size; ++b) {
    const std::int64_t s = order.sample_at(first + b);
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int32_t id = tokens_[s * T + t];
      EXPECT_EQ(batch.ids.data<std::int32_t>()[b * T + t], id);
      EXPECT_EQ(batch.labels.data<std::int32_t>()[b * T + t],
                id == 2 ? -100 : tokens_[s * T + t + 1]);
    }
  }
}

TEST_F(BatchFromFile, OrderLargerThanTheDatasetIsAnError) {
  const TokenDataset data = TokenDataset::open(path_);
  expect_contains(error_of([&] { make_batch(data, SampleOrder(6, 1), 0, 1, 4, 2); }),
                  {"covers 6 samples", path_, "only 5 samples of 5 tokens"});
}

}  // namespace
}  // namespace ratrain
