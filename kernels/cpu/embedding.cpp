// Token embedding lookup and its gradient.
// ids (N) i32, emb / demb (V, C), out / dout (N, C). Every id is checked to lie in
// [0, V) before any row is touched; the error names the id and its flat position.
#include <algorithm>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

void check_ids(const std::int32_t* ids, std::int64_t n, std::int64_t vocab) {
  for (std::int64_t i = 0; i < n; ++i)
    RT_REQUIRE(ids[i] >= 0 && ids[i] < vocab, "token id ", ids[i], " at position ", i,
               " is outside the vocabulary [0, ", vocab, ")");
}

}  // namespace

template <typename T>
void embedding_forward(const Tensor& ids, const Tensor& emb, Tensor& out) {
  const std::int64_t n = ids.dim(0), vocab = emb.dim(0), c = emb.dim(1);
  const std::int32_t* id = ids.data<std::int32_t>();
  check_ids(id, n, vocab);
  const T* table = emb.data<T>();
  T* y = out.data<T>();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) std::copy_n(table + id[i] * c, c, y + i * c);
}

template <typename T>
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& demb) {
  const std::int64_t n = ids.dim(0), vocab = demb.dim(0), c = demb.dim(1);
  const std::int32_t* id = ids.data<std::int32_t>();
  check_ids(id, n, vocab);
  const T* dy = dout.data<T>();
  T* dtable = demb.data<T>();
  // Serial over rows: repeated ids add into the same row. O(N C), cheap next to GEMMs.
  for (std::int64_t i = 0; i < n; ++i) {
    T* row = dtable + id[i] * c;
    for (std::int64_t j = 0; j < c; ++j) row[j] += dy[i * c + j];
  }
}

template void embedding_forward<float>(const Tensor&, const Tensor&, Tensor&);
template void embedding_forward<double>(const Tensor&, const Tensor&, Tensor&);
template void embedding_backward<float>(const Tensor&, const Tensor&, Tensor&);
template void embedding_backward<double>(const Tensor&, const Tensor&, Tensor&);

}  // namespace ratrain::cpu
