// Optimizer kernels on flat buffers: the AdamW step, the sum of squares behind the
// global gradient norm, and in-place scaling (gradient clipping).
//
// AdamW follows PyTorch's torch.optim.AdamW (decoupled weight decay applied first):
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
// evaluated in double per element and stored in T.
// sum_of_squares adds fixed-size chunks in parallel and the chunk sums in chunk order,
// so the result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {
constexpr std::int64_t kSumChunk = 1 << 16;  // elements per partial sum of squares
}  // namespace

template <typename T>
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                  const ops::AdamWHyper& h) {
  const double decay = 1.0 - h.lr * h.weight_decay;
  const double step_size = h.lr / (1.0 - std::pow(h.beta1, double(h.step)));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(h.beta2, double(h.step)));
  T* ps = param.data<T>();
  const T* gs = grad.data<T>();
  T* ms = m.data<T>();
  T* vs = v.data<T>();
  const std::int64_t n = param.numel();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) {
    const double g = gs[i];
    const double m_new = h.beta1 * double(ms[i]) + (1.0 - h.beta1) * g;
    const double v_new = h.beta2 * double(vs[i]) + (1.0 - h.beta2) * g * g;
    ms[i] = T(m_new);
    vs[i] = T(v_new);
    const double p = double(ps[i]) * decay;
    ps[i] = T(p - step_size * m_new / (std::sqrt(v_new) / bias2_sqrt + h.eps));
  }
}

template <typename T>
double sum_of_squares(const Tensor& x) {
  const T* xs = x.data<T>();
  const std::int64_t n = x.numel();
  const std::int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks));  // (chunks)
#pragma omp parallel for
  for (std::int64_t k = 0; k < chunks; ++k) {
    const std::int64_t end = std::min(n, (k + 1) * kSumChunk);
    double sum = 0;
    for (std::int64_t i = k * kSumChunk; i < end; ++i)
      sum += double(xs[i]) * double(xs[i]);
    partial[k] = sum;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

template <typename T>
void scale_inplace(Tensor& x, double factor) {
  T* xs = x.data<T>();
  const std::int64_t n = x.numel();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) xs[i] = T(double(xs[i]) * factor);
}

template void adamw_update<float>(Tensor&, const Tensor&, Tensor&, Tensor&,
                                  const ops::AdamWHyper&);
template void adamw_update<double>(Tensor&, const Tensor&, Tensor&, Tensor&,
                                   const ops::AdamWHyper&);
template double sum_of_squares<float>(const Tensor&);
template double sum_of_squares<double>(const Tensor&);
template void scale_inplace<float>(Tensor&, double);
template void scale_inplace<double>(Tensor&, double);

}  // namespace ratrain::cpu
