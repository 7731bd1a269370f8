// Shared helpers of the kernel tests: deterministic random tensors (CounterRng, so a
// test's inputs never depend on call order), norm-wise comparison, and central finite
// differences for gradient checks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "runtime/rng.hpp"
#include "runtime/tensor.hpp"

namespace ratrain::test {

// Normal(0, scale^2) entries drawn from the stream `name`, stored in `dtype`.
inline Tensor random_tensor(const Shape& shape, std::string_view name, double scale = 1.0,
                            DType dtype = DType::f64) {
  const CounterRng rng(1234, name);
  Tensor t = Tensor::empty(shape, DType::f64);
  double* p = t.data<double>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = scale * rng.normal(std::uint64_t(i));
  return dtype == DType::f64 ? t : t.to(dtype);
}

inline Tensor int_tensor(const std::vector<std::int32_t>& values) {
  Tensor t = Tensor::empty({std::int64_t(values.size())}, DType::i32);
  for (std::size_t i = 0; i < values.size(); ++i) t.data<std::int32_t>()[i] = values[i];
  return t;
}

inline Tensor clone(const Tensor& t) { return t.to(t.dtype()); }

// a - b, in double.
inline Tensor minus(const Tensor& a, const Tensor& b) {
  Tensor d = a.to(DType::f64);
  for (std::int64_t i = 0; i < d.numel(); ++i) d.data<double>()[i] -= b.item(i);
  return d;
}

inline double norm(const Tensor& t) {
  double s = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) s += t.item(i) * t.item(i);
  return std::sqrt(s);
}

// ||a - b|| / ||b|| (DESIGN.md "Numerics"); 0 when both are zero.
inline double rel_error(const Tensor& a, const Tensor& b) {
  const double diff = norm(minus(a, b)), ref = norm(b);
  return ref == 0 ? diff : diff / ref;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.item(i) - b.item(i)));
  return m;
}

// sum(out * weights): the scalar loss of every gradient check, so that d(loss)/d(out)
// is `weights`.
inline double weighted_sum(const Tensor& out, const Tensor& weights) {
  double s = 0;
  for (std::int64_t i = 0; i < out.numel(); ++i) s += out.item(i) * weights.item(i);
  return s;
}

// d loss / d input by central differences, perturbing each element of the f64 tensor
// `input` in place by +-eps (and restoring it).
inline Tensor numeric_grad(Tensor& input, const std::function<double()>& loss,
                           double eps = 1e-6) {
  Tensor grad = Tensor::zeros(input.shape(), DType::f64);
  double* x = input.data<double>();
  for (std::int64_t i = 0; i < input.numel(); ++i) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double up = loss();
    x[i] = saved - eps;
    const double down = loss();
    x[i] = saved;
    grad.data<double>()[i] = (up - down) / (2 * eps);
  }
  return grad;
}

}  // namespace ratrain::test
