// Row-major GEMM for the CPU backend (linear layers and the tied-head cross-entropy):
//   C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C
// where op(X) is X or X^T. Leading dimensions are row strides in elements: A is stored
// (m, lda) untransposed or (k, lda) transposed, likewise B.
// gemm() uses CBLAS when the build found one (RATRAIN_HAVE_CBLAS), else gemm_blocked().
// With beta == 0, C is never read (it may hold NaN). Call it from serial code: both
// paths parallelise internally.
#pragma once

#include <cstdint>

namespace ratrain::cpu {

enum class Trans : std::uint8_t { no, yes };

template <typename T>
struct GemmArgs {
  Trans trans_a = Trans::no;
  Trans trans_b = Trans::no;
  std::int64_t m = 0, n = 0, k = 0;
  T alpha = 1;
  const T* a = nullptr;
  std::int64_t lda = 0;
  const T* b = nullptr;
  std::int64_t ldb = 0;
  T beta = 0;
  T* c = nullptr;
  std::int64_t ldc = 0;
};

template <typename T> void gemm(const GemmArgs<T>& args);
// The portable fallback: packed tiles, OpenMP over output tiles. Exposed for tests.
template <typename T> void gemm_blocked(const GemmArgs<T>& args);

}  // namespace ratrain::cpu
