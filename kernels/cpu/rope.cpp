// Rotary position embedding, rotate-half convention (RATPLUS.md step 5).
// x, y, dy, dx: (B, T, H, dh), dh even, half = dh / 2. For p = position_offset + t and
// c < half, theta = p * base^(-2c/dh) rotates the pair (x[c], x[c + half]):
//   y[c] = x[c] cos - x[c + half] sin,   y[c + half] = x[c + half] cos + x[c] sin.
// Backward applies the transpose, i.e. the rotation by -theta; both go through
// rotate() with a sign. Each pair is read completely before it is written, which is
// what makes y == x (in place) safe. Angles and their sin/cos are computed in double.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

template <typename T>
void rotate(const Tensor& x, double base, std::int64_t position_offset, double sign, Tensor& y) {
  const std::int64_t batch = x.dim(0), seq = x.dim(1), heads = x.dim(2), dh = x.dim(3);
  const std::int64_t half = dh / 2;
  std::vector<double> inv_freq(static_cast<std::size_t>(half));  // (half) base^(-2c/dh)
  for (std::int64_t c = 0; c < half; ++c)
    inv_freq[c] = std::pow(base, -2.0 * double(c) / double(dh));
  const T* xs = x.data<T>();
  T* ys = y.data<T>();
#pragma omp parallel
  {
    std::vector<double> cos_t(static_cast<std::size_t>(half)), sin_t(cos_t.size());  // (half)
#pragma omp for
    for (std::int64_t t = 0; t < seq; ++t) {
      const double p = double(position_offset + t);
      for (std::int64_t c = 0; c < half; ++c) {
        cos_t[c] = std::cos(p * inv_freq[c]);
        sin_t[c] = sign * std::sin(p * inv_freq[c]);
      }
      for (std::int64_t b = 0; b < batch; ++b) {
        for (std::int64_t h = 0; h < heads; ++h) {
          const std::int64_t at = ((b * seq + t) * heads + h) * dh;
          for (std::int64_t c = 0; c < half; ++c) {
            const double lo = xs[at + c], hi = xs[at + c + half];
            ys[at + c] = T(lo * cos_t[c] - hi * sin_t[c]);
            ys[at + c + half] = T(hi * cos_t[c] + lo * sin_t[c]);
          }
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void rope_forward(const Tensor& x, double base, std::int64_t position_offset, Tensor& y) {
  rotate<T>(x, base, position_offset, 1.0, y);
}

template <typename T>
void rope_backward(const Tensor& dy, double base, std::int64_t position_offset, Tensor& dx) {
  rotate<T>(dy, base, position_offset, -1.0, dx);
}

template void rope_forward<float>(const Tensor&, double, std::int64_t, Tensor&);
template void rope_forward<double>(const Tensor&, double, std::int64_t, Tensor&);
template void rope_backward<float>(const Tensor&, double, std::int64_t, Tensor&);
template void rope_backward<double>(const Tensor&, double, std::int64_t, Tensor&);

}  // namespace ratrain::cpu
