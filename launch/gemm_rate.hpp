// The measured dense GEMM rate of this process's backend: MFU's denominator in `ratrain
// bench` and in every training line of metrics.jsonl (DESIGN.md "Observable"), measured
// rather than taken from a data sheet, on the same cuBLASLt (or CPU BLAS) path the model's
// linear layers use.
#pragma once

#include <cstdint>

#include "runtime/tensor.hpp"

namespace ratrain {

// FLOP/s of y = x W^T with (n, n) operands in `dtype` on `device`, over `reps` timed
// products after three untimed ones. The operands hold hashed values in [-0.5, 0.5): all
// zeros draw less power and clock higher, overstating an H100's rate by ~10 %.
double measured_gemm_rate(DType dtype, Device device, std::int64_t n, int reps);

}  // namespace ratrain
