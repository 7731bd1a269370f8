// Tied output head fused with cross-entropy: logits = x emb^T, one block of kBlockRows
// rows at a time, so the scratch is (kBlockRows, V) and never (N, V).
// x, dx (N, C); emb, demb (V, C); labels (N) i32, -100 = ignored.
//
// Per row with a valid label y: loss = lse(z) - z_y, computed in double after
// subtracting the row max. The gradient w.r.t. the logits,
//   G = grad_scale * (softmax(z) - onehot(y))   (a zero row for ignored labels),
// overwrites the logits block in place and feeds two GEMMs:
//   dx_block = G emb (overwritten),  demb += G^T x_block (accumulated).
// Row losses are summed in row order, so loss_sum does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu.hpp"
#include "kernels/cpu/gemm.hpp"

namespace ratrain::cpu {
namespace {

constexpr std::int64_t kBlockRows = 64;

void check_labels(const std::int32_t* labels, std::int64_t n, std::int64_t vocab) {
  for (std::int64_t i = 0; i < n; ++i)
    RT_REQUIRE(labels[i] == ops::kIgnoreLabel || (labels[i] >= 0 && labels[i] < vocab),
               "label ", labels[i], " at position ", i, " is outside the vocabulary [0, ", vocab,
               ") and is not the ignore label ", ops::kIgnoreLabel);
}

}  // namespace

std::int64_t count_valid_labels(const Tensor& labels) {
  const std::int32_t* ls = labels.data<std::int32_t>();
  return std::count_if(ls, ls + labels.numel(),
                       [](std::int32_t l) { return l != ops::kIgnoreLabel; });
}

template <typename T>
ops::CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                                const Tensor& labels, double grad_scale,
                                                Tensor* dx, Tensor* demb) {
  const std::int64_t n = x.dim(0), c = x.dim(1), vocab = emb.dim(0);
  const std::int32_t* ls = labels.data<std::int32_t>();
  check_labels(ls, n, vocab);
  const bool want_grad = dx != nullptr || demb != nullptr;
  const T* xs = x.data<T>();
  const T* es = emb.data<T>();

  std::vector<T> block(static_cast<std::size_t>(kBlockRows * vocab));  // (kBlockRows, V)
  std::vector<double> row_loss(kBlockRows);                             // (kBlockRows)
  ops::CrossEntropyResult result;
  result.valid = count_valid_labels(labels);
  for (std::int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
    const std::int64_t rows = std::min(kBlockRows, n - r0);
    const T* x_block = xs + r0 * c;
    // block (rows, V) = x_block (rows, C) emb^T (C, V)
    gemm<T>({.trans_b = Trans::yes, .m = rows, .n = vocab, .k = c, .a = x_block, .lda = c,
             .b = es, .ldb = c, .c = block.data(), .ldc = vocab});
#pragma omp parallel for
    for (std::int64_t r = 0; r < rows; ++r) {
      T* z = block.data() + r * vocab;
      const std::int32_t label = ls[r0 + r];
      if (label == ops::kIgnoreLabel) {
        row_loss[r] = 0;
        if (want_grad) std::fill_n(z, vocab, T(0));
        continue;
      }
      const double z_max = *std::max_element(z, z + vocab);
      double sum = 0;
      for (std::int64_t j = 0; j < vocab; ++j) sum += std::exp(double(z[j]) - z_max);
      const double lse = z_max + std::log(sum);
      row_loss[r] = lse - double(z[label]);
      if (!want_grad) continue;
      for (std::int64_t j = 0; j < vocab; ++j) z[j] = T(grad_scale * std::exp(double(z[j]) - lse));
      z[label] -= T(grad_scale);
    }
    for (std::int64_t r = 0; r < rows; ++r) result.loss_sum += row_loss[r];
    if (dx) {
      // dx_block (rows, C) = G (rows, V) emb (V, C)
      gemm<T>({.m = rows, .n = c, .k = vocab, .a = block.data(), .lda = vocab, .b = es,
               .ldb = c, .c = dx->data<T>() + r0 * c, .ldc = c});
    }
    if (demb) {
      // demb (V, C) += G^T (V, rows) x_block (rows, C)
      gemm<T>({.trans_a = Trans::yes, .m = vocab, .n = c, .k = rows, .a = block.data(),
               .lda = vocab, .b = x_block, .ldb = c, .beta = 1, .c = demb->data<T>(), .ldc = c});
    }
  }
  return result;
}

template ops::CrossEntropyResult tied_head_cross_entropy<float>(const Tensor&, const Tensor&,
                                                                const Tensor&, double, Tensor*,
                                                                Tensor*);
template ops::CrossEntropyResult tied_head_cross_entropy<double>(const Tensor&, const Tensor&,
                                                                 const Tensor&, double, Tensor*,
                                                                 Tensor*);

}  // namespace ratrain::cpu
