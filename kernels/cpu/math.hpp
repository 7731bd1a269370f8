// Scalar helpers shared by the CPU kernels.
#pragma once

#include <cmath>

namespace ratrain::cpu {

// 1 / (1 + e^-x) in T: the model computes its gates in fp32. Saturates cleanly to 0
// or 1 (exp overflow gives 1 / inf = 0).
template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace ratrain::cpu
