// Host-side checks and dispatch of the parameter initialisation op (ops::fill_normal).
#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace ratrain::ops {

void fill_normal(Tensor& out, const NormalDraw& draw, const PartIndexMap& map) {
  RT_REQUIRE(draw.std >= 0, "fill_normal: std must be >= 0, got ", draw.std);
  RT_DISPATCH_CUDA(out, fill_normal, out, draw, map);
  detail::dispatch_float(out, "fill_normal",
                         [&](auto t) { cpu::fill_normal<decltype(t)>(out, draw, map); });
}

}  // namespace ratrain::ops
