// RMSNorm without bias: y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps), per row.
// x, y, dy, dx (N, C); w, dw (C); rstd (N). Row statistics accumulate in double.
//
// Backward, with r = rstd of the row:
//   dx_c = r w_c dy_c - x_c r^3 / C * sum_k dy_k w_k x_k
//   dw_c += sum_rows dy_c x_c r                  (accumulated, as ops.hpp requires)
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {
constexpr std::int64_t kColumnsPerChunk = 64;  // dw columns one thread reduces over rows
}  // namespace

template <typename T>
void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rstd) {
  const std::int64_t n = x.dim(0), c = x.dim(1);
  const T* xs = x.data<T>();
  const T* ws = w.data<T>();
  T* ys = y.data<T>();
  T* rs = rstd.data<T>();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = xs + i * c;
    double sum_sq = 0;
    for (std::int64_t j = 0; j < c; ++j) sum_sq += double(row[j]) * double(row[j]);
    const double r = 1.0 / std::sqrt(sum_sq / double(c) + eps);
    rs[i] = T(r);
    for (std::int64_t j = 0; j < c; ++j) ys[i * c + j] = T(double(row[j]) * r * double(ws[j]));
  }
}

template <typename T>
void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                      Tensor& dx, Tensor& dw) {
  const std::int64_t n = x.dim(0), c = x.dim(1);
  const T* xs = x.data<T>();
  const T* ws = w.data<T>();
  const T* rs = rstd.data<T>();
  const T* dys = dy.data<T>();
  T* dxs = dx.data<T>();

  // dw first (dx may alias dy): each thread owns a chunk of columns and sums every row
  // in order, so the result does not depend on the thread count.
  T* dws = dw.data<T>();
  const std::int64_t chunks = (c + kColumnsPerChunk - 1) / kColumnsPerChunk;
#pragma omp parallel for
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
    const std::int64_t j0 = chunk * kColumnsPerChunk, j1 = std::min(c, j0 + kColumnsPerChunk);
    double acc[kColumnsPerChunk] = {};
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = j0; j < j1; ++j)
        acc[j - j0] += double(dys[i * c + j]) * double(xs[i * c + j]) * double(rs[i]);
    for (std::int64_t j = j0; j < j1; ++j) dws[j] += T(acc[j - j0]);
  }

#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xr = xs + i * c;
    const T* dyr = dys + i * c;
    const double r = rs[i];
    double dot = 0;  // sum_k dy_k w_k x_k
    for (std::int64_t j = 0; j < c; ++j) dot += double(dyr[j]) * double(ws[j]) * double(xr[j]);
    const double coef = r * r * r * dot / double(c);
    for (std::int64_t j = 0; j < c; ++j)
      dxs[i * c + j] = T(r * double(ws[j]) * double(dyr[j]) - double(xr[j]) * coef);
  }
}

template void rmsnorm_forward<float>(const Tensor&, const Tensor&, double, Tensor&, Tensor&);
template void rmsnorm_forward<double>(const Tensor&, const Tensor&, double, Tensor&, Tensor&);
template void rmsnorm_backward<float>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      Tensor&, Tensor&);
template void rmsnorm_backward<double>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                       Tensor&, Tensor&);

}  // namespace ratrain::cpu
