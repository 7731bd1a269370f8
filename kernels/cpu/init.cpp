// Parameter initialisation on the host: each element's draw depends only on (seed, key,
// global index), so any thread order gives the same numbers.
#include "kernels/cpu/cpu.hpp"
#include "runtime/philox.hpp"

namespace ratrain::cpu {

template <typename T>
void fill_normal(Tensor& out, const ops::NormalDraw& draw, const PartIndexMap& map) {
  T* values = out.data<T>();
  const std::int64_t n = out.numel();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const auto index = static_cast<std::uint64_t>(map.global(i));
    values[i] = T(draw.mean + draw.std * philox::normal_of(philox::element_block(draw.seed, draw.key, index)));
  }
}

template void fill_normal<float>(Tensor&, const ops::NormalDraw&, const PartIndexMap&);
template void fill_normal<double>(Tensor&, const ops::NormalDraw&, const PartIndexMap&);

}  // namespace ratrain::cpu
