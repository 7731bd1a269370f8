// Token embedding lookup and its gradient, over the full table or a vocab-parallel shard.
// ids (N) i32, emb / demb (V, C), out / dout (N, C). Every id is checked before any row
// is touched; the error names the id and its flat position.
//
// A shard holds rows [vocab_begin, vocab_begin + Vs) of the table. The full table is the
// shard at vocab_begin 0 holding every row, so both forms run the same row loops and
// differ only in their check: the full table requires ids in [0, V); a shard cannot know
// V, so it requires ids >= 0 and treats the others as another shard's (zero rows in
// forward, skipped in backward).
#include <algorithm>
#include <optional>
#include <string>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

// Requires ids in [0, vocab), or ids >= 0 when the vocabulary size is unknown (a shard).
void check_ids(const Tensor& ids, std::optional<std::int64_t> vocab) {
  const std::int32_t* id = ids.data<std::int32_t>();
  for (std::int64_t i = 0; i < ids.numel(); ++i)
    RT_REQUIRE(id[i] >= 0 && (!vocab || id[i] < *vocab), "token id ", id[i], " at position ",
               i, " is outside the vocabulary [0, ", vocab ? std::to_string(*vocab) : "V", ")");
}

// out[i] = emb[ids[i] - vocab_begin], or zeros where another shard holds ids[i].
template <typename T>
void gather_rows(const Tensor& ids, const Tensor& emb, std::int64_t vocab_begin, Tensor& out) {
  const std::int64_t n = ids.dim(0), c = emb.dim(1);
  const std::int32_t* id = ids.data<std::int32_t>();
  const T* table = emb.data<T>();
  T* y = out.data<T>();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t row = vocab_shard_row(id[i], vocab_begin, emb.dim(0));
    if (row >= 0)
      std::copy_n(table + row * c, c, y + i * c);
    else
      std::fill_n(y + i * c, c, T(0));
  }
}

// demb[ids[i] - vocab_begin] += dout[i] for the ids of this shard.
template <typename T>
void scatter_add_rows(const Tensor& ids, const Tensor& dout, std::int64_t vocab_begin,
                      Tensor& demb) {
  const std::int64_t n = ids.dim(0), c = demb.dim(1);
  const std::int32_t* id = ids.data<std::int32_t>();
  const T* dy = dout.data<T>();
  T* dtable = demb.data<T>();
  // Serial over rows: repeated ids add into the same row. O(N C), cheap next to GEMMs.
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t row = vocab_shard_row(id[i], vocab_begin, demb.dim(0));
    if (row < 0) continue;
    T* dst = dtable + row * c;
    for (std::int64_t j = 0; j < c; ++j) dst[j] += dy[i * c + j];
  }
}

}  // namespace

template <typename T>
void embedding_forward(const Tensor& ids, const Tensor& emb, Tensor& out) {
  check_ids(ids, emb.dim(0));
  gather_rows<T>(ids, emb, 0, out);
}

template <typename T>
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& demb) {
  check_ids(ids, demb.dim(0));
  scatter_add_rows<T>(ids, dout, 0, demb);
}

template <typename T>
void embedding_shard_forward(const Tensor& ids, const Tensor& emb_shard,
                             std::int64_t vocab_begin, Tensor& out) {
  check_ids(ids, std::nullopt);
  gather_rows<T>(ids, emb_shard, vocab_begin, out);
}

template <typename T>
void embedding_shard_backward(const Tensor& ids, const Tensor& dout, std::int64_t vocab_begin,
                              Tensor& demb_shard) {
  check_ids(ids, std::nullopt);
  scatter_add_rows<T>(ids, dout, vocab_begin, demb_shard);
}

#define RATRAIN_INSTANTIATE_EMBEDDING(T)                                                       \
  template void embedding_forward<T>(const Tensor&, const Tensor&, Tensor&);                   \
  template void embedding_backward<T>(const Tensor&, const Tensor&, Tensor&);                  \
  template void embedding_shard_forward<T>(const Tensor&, const Tensor&, std::int64_t,         \
                                           Tensor&);                                           \
  template void embedding_shard_backward<T>(const Tensor&, const Tensor&, std::int64_t,        \
                                            Tensor&);
RATRAIN_INSTANTIATE_EMBEDDING(float)
RATRAIN_INSTANTIATE_EMBEDDING(double)
#undef RATRAIN_INSTANTIATE_EMBEDDING

}  // namespace ratrain::cpu
