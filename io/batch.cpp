// Batch assembly: sample rows from the dataset, then ids/labels with EOS masking.
#include "io/batch.hpp"

#include "kernels/ops.hpp"

namespace ratrain {

std::int64_t num_samples(const TokenDataset& data, std::int64_t seq_len) {
  RT_REQUIRE(seq_len > 0, "sequence length must be positive (got ", seq_len, ")");
  RT_REQUIRE(data.size() > seq_len, "token file '", data.path(), "' holds ", data.size(),
             " tokens, fewer than one sample of seq_len + 1 = ", seq_len + 1);
  return (data.size() - 1) / seq_len;
}

Batch batch_from_rows(const Tensor& rows, std::int32_t eos_id) {
  RT_REQUIRE(rows.rank() == 2 && rows.dtype() == DType::i32 && rows.device() == Device::cpu &&
                 rows.dim(1) >= 2,
             "batch rows must be a host i32 tensor (B, T+1) with T >= 1 (got ",
             dtype_name(rows.dtype()), " ", shape_str(rows.shape()), ")");
  const std::int64_t batch = rows.dim(0), seq_len = rows.dim(1) - 1;
  Batch out{Tensor::empty({batch, seq_len}, DType::i32),
            Tensor::empty({batch, seq_len}, DType::i32)};
  const std::int32_t* src = rows.data<std::int32_t>();
  std::int32_t* ids = out.ids.data<std::int32_t>();
  std::int32_t* labels = out.labels.data<std::int32_t>();
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int32_t* row = src + b * (seq_len + 1);
    for (std::int64_t t = 0; t < seq_len; ++t) {
      ids[b * seq_len + t] = row[t];
      labels[b * seq_len + t] = eos_id >= 0 && row[t] == eos_id ? ops::kIgnoreLabel : row[t + 1];
    }
  }
  return out;
}

Batch make_batch(const TokenDataset& data, const SampleOrder& order,
                 std::int64_t first_global_sample, std::int64_t batch_size, std::int64_t seq_len,
                 std::int32_t eos_id) {
  const std::int64_t available = num_samples(data, seq_len);
  RT_REQUIRE(order.num_samples() <= available, "the sample order covers ", order.num_samples(),
             " samples but '", data.path(), "' holds only ", available, " samples of ", seq_len + 1,
             " tokens");
  RT_REQUIRE(batch_size > 0, "batch size must be positive (got ", batch_size, ")");
  Tensor rows = Tensor::empty({batch_size, seq_len + 1}, DType::i32);  // (B, T+1)
  for (std::int64_t b = 0; b < batch_size; ++b) {
    const std::int64_t sample = order.sample_at(first_global_sample + b);
    data.read(sample * seq_len, seq_len + 1, rows.data<std::int32_t>() + b * (seq_len + 1));
  }
  return batch_from_rows(rows, eos_id);
}

}  // namespace ratrain
