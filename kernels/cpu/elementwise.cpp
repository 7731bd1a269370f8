// Elementwise ops on flat tensors of equal numel: output gate, exact GELU, add.
//   output gate: y = attn * s, s = sigmoid(o);  dattn = dy s,  do = dy attn s (1 - s)
//   GELU (erf):  y = x Phi(x);                  dx = dy (Phi(x) + x phi(x))
// with Phi, phi the standard normal CDF and density. Outputs may alias inputs of the
// same shape: each element is read before it is written.
#include <cmath>
#include <numbers>

#include "kernels/cpu/cpu.hpp"
#include "kernels/cpu/math.hpp"

namespace ratrain::cpu {
namespace {

// Phi(x) = 0.5 (1 + erf(x / sqrt 2)), in double for both dtypes.
double normal_cdf(double x) { return 0.5 * (1.0 + std::erf(x * std::numbers::sqrt2 / 2.0)); }

double normal_pdf(double x) {
  return std::exp(-0.5 * x * x) * std::numbers::inv_sqrtpi / std::numbers::sqrt2;
}

}  // namespace

template <typename T>
void output_gate_forward(const Tensor& attn, const Tensor& o, Tensor& y) {
  const T* as = attn.data<T>();
  const T* os = o.data<T>();
  T* ys = y.data<T>();
  const std::int64_t n = y.numel();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) ys[i] = as[i] * sigmoid(os[i]);
}

template <typename T>
void output_gate_backward(const Tensor& attn, const Tensor& o, const Tensor& dy, Tensor& dattn,
                          Tensor& d_o) {
  const T* as = attn.data<T>();
  const T* os = o.data<T>();
  const T* dys = dy.data<T>();
  T* das = dattn.data<T>();
  T* dos = d_o.data<T>();
  const std::int64_t n = dy.numel();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(os[i]), a = as[i], g = dys[i];
    das[i] = g * s;
    dos[i] = g * a * s * (T(1) - s);
  }
}

template <typename T>
void gelu_forward(const Tensor& x, Tensor& y) {
  const T* xs = x.data<T>();
  T* ys = y.data<T>();
  const std::int64_t n = x.numel();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) ys[i] = T(double(xs[i]) * normal_cdf(xs[i]));
}

template <typename T>
void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const T* xs = x.data<T>();
  const T* dys = dy.data<T>();
  T* dxs = dx.data<T>();
  const std::int64_t n = x.numel();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) {
    const double xi = xs[i];
    dxs[i] = T(double(dys[i]) * (normal_cdf(xi) + xi * normal_pdf(xi)));
  }
}

template <typename T>
void add_inplace(Tensor& acc, const Tensor& x) {
  T* as = acc.data<T>();
  const T* xs = x.data<T>();
  const std::int64_t n = acc.numel();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) as[i] += xs[i];
}

template void output_gate_forward<float>(const Tensor&, const Tensor&, Tensor&);
template void output_gate_forward<double>(const Tensor&, const Tensor&, Tensor&);
template void output_gate_backward<float>(const Tensor&, const Tensor&, const Tensor&, Tensor&,
                                          Tensor&);
template void output_gate_backward<double>(const Tensor&, const Tensor&, const Tensor&, Tensor&,
                                           Tensor&);
template void gelu_forward<float>(const Tensor&, Tensor&);
template void gelu_forward<double>(const Tensor&, Tensor&);
template void gelu_backward<float>(const Tensor&, const Tensor&, Tensor&);
template void gelu_backward<double>(const Tensor&, const Tensor&, Tensor&);
template void add_inplace<float>(Tensor&, const Tensor&);
template void add_inplace<double>(Tensor&, const Tensor&);

}  // namespace ratrain::cpu
