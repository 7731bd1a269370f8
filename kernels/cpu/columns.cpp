// Column split / concat of W_in's output into its five segments o, q, k, v, g.
// x (N, count*C) <-> parts[s] (N, C) = x[:, s*C : (s+1)*C]. Pure copies.
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {

template <typename T>
void split_columns(const Tensor& x, Tensor* const* parts, int count) {
  const std::int64_t n = x.dim(0), width = x.dim(1), c = width / count;
  const T* xs = x.data<T>();
  std::vector<T*> out(static_cast<std::size_t>(count));
  for (int s = 0; s < count; ++s) out[s] = parts[s]->data<T>();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i)
    for (int s = 0; s < count; ++s) std::copy_n(xs + i * width + s * c, c, out[s] + i * c);
}

template <typename T>
void concat_columns(const Tensor* const* parts, int count, Tensor& x) {
  const std::int64_t n = x.dim(0), width = x.dim(1), c = width / count;
  T* xs = x.data<T>();
  std::vector<const T*> in(static_cast<std::size_t>(count));
  for (int s = 0; s < count; ++s) in[s] = parts[s]->data<T>();
#pragma omp parallel for
  for (std::int64_t i = 0; i < n; ++i)
    for (int s = 0; s < count; ++s) std::copy_n(in[s] + i * c, c, xs + i * width + s * c);
}

template void split_columns<float>(const Tensor&, Tensor* const*, int);
template void split_columns<double>(const Tensor&, Tensor* const*, int);
template void concat_columns<float>(const Tensor* const*, int, Tensor&);
template void concat_columns<double>(const Tensor* const*, int, Tensor&);

}  // namespace ratrain::cpu
