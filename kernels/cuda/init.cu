// Parameter initialisation on the device (ops::fill_normal): the host's draw
// (runtime/philox.hpp) evaluated per element in place, so a 7.6B model needs neither the
// host's minutes of Box-Muller nor a transfer of every weight.
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/storage.cuh"
#include "runtime/philox.hpp"

namespace ratrain::cuda {
namespace {

template <typename T>
struct NormalFill {
  T* out;
  ops::NormalDraw draw;
  PartIndexMap map;
  __device__ void operator()(std::int64_t i) const {
    const auto index = static_cast<std::uint64_t>(map.global(i));
    const double value =
        draw.mean + draw.std * philox::normal_of(philox::element_block(draw.seed, draw.key, index));
    out[i] = from_float<T>(static_cast<float>(value));  // as the host rounds: double -> float -> T
  }
};

}  // namespace

void fill_normal(Tensor& out, const ops::NormalDraw& draw, const PartIndexMap& map,
                 cudaStream_t stream) {
  dispatch_storage(out, "fill_normal", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise(NormalFill<T>{ptr<T>(out), draw, map}, out.numel(), stream);
  });
}

}  // namespace ratrain::cuda
