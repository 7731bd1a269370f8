// GEMM: CBLAS when available, else a cache-blocked loop (see gemm.hpp for the contract).
// Either way OpenMP does the threading: the CBLAS path gives each thread a contiguous
// share of C's rows and one single-threaded CBLAS call.
//
// The fallback packs op(A) and op(B) tiles into contiguous row-major buffers, so that
// one inner kernel (C row += a * B row, unit stride, vectorisable) serves all four
// transpose cases. OpenMP runs over output tiles; each owns its C tile, so no races.
#include "kernels/cpu/gemm.hpp"

#include <algorithm>
#include <climits>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#if defined(RATRAIN_HAVE_CBLAS)
#include <cblas.h>
#endif

namespace ratrain::cpu {
namespace {

// Tile sizes: a packed B tile (kTileK x kTileN) of floats is 256 KiB (L2-sized), one C
// row segment (kTileN) stays in L1 across the k loop.
constexpr std::int64_t kTileM = 64;
constexpr std::int64_t kTileN = 256;
constexpr std::int64_t kTileK = 256;

// C = beta * C, with beta == 0 writing zeros (never reading C).
template <typename T>
void scale_output(const GemmArgs<T>& g) {
  if (g.beta == T(1)) return;
#pragma omp parallel for
  for (std::int64_t i = 0; i < g.m; ++i) {
    T* row = g.c + i * g.ldc;
    for (std::int64_t j = 0; j < g.n; ++j) row[j] = g.beta == T(0) ? T(0) : g.beta * row[j];
  }
}

}  // namespace

template <typename T>
void gemm_blocked(const GemmArgs<T>& g) {
  scale_output(g);
  if (g.k == 0 || g.alpha == T(0)) return;
  const std::int64_t tiles_m = (g.m + kTileM - 1) / kTileM;
  const std::int64_t tiles_n = (g.n + kTileN - 1) / kTileN;
  // op(A)[i][p] and op(B)[p][j] for either storage order.
  auto a_at = [&](std::int64_t i, std::int64_t p) {
    return g.trans_a == Trans::no ? g.a[i * g.lda + p] : g.a[p * g.lda + i];
  };
  auto b_at = [&](std::int64_t p, std::int64_t j) {
    return g.trans_b == Trans::no ? g.b[p * g.ldb + j] : g.b[j * g.ldb + p];
  };
#pragma omp parallel
  {
    std::vector<T> a_tile(kTileM * kTileK);  // (kTileM, kTileK), alpha folded in
    std::vector<T> b_tile(kTileK * kTileN);  // (kTileK, kTileN)
#pragma omp for collapse(2) schedule(dynamic)
    for (std::int64_t tm = 0; tm < tiles_m; ++tm) {
      for (std::int64_t tn = 0; tn < tiles_n; ++tn) {
        const std::int64_t i0 = tm * kTileM, i1 = std::min(g.m, i0 + kTileM);
        const std::int64_t j0 = tn * kTileN, j1 = std::min(g.n, j0 + kTileN);
        const std::int64_t nj = j1 - j0;
        for (std::int64_t p0 = 0; p0 < g.k; p0 += kTileK) {
          const std::int64_t p1 = std::min(g.k, p0 + kTileK), np = p1 - p0;
          for (std::int64_t i = i0; i < i1; ++i)
            for (std::int64_t p = p0; p < p1; ++p)
              a_tile[(i - i0) * np + (p - p0)] = g.alpha * a_at(i, p);
          for (std::int64_t p = p0; p < p1; ++p)
            for (std::int64_t j = j0; j < j1; ++j) b_tile[(p - p0) * nj + (j - j0)] = b_at(p, j);
          for (std::int64_t i = i0; i < i1; ++i) {
            T* c_row = g.c + i * g.ldc + j0;
            const T* a_row = a_tile.data() + (i - i0) * np;
            for (std::int64_t p = 0; p < np; ++p) {
              const T a = a_row[p];
              const T* b_row = b_tile.data() + p * nj;
              for (std::int64_t j = 0; j < nj; ++j) c_row[j] += a * b_row[j];
            }
          }
        }
      }
    }
  }
}

#if defined(RATRAIN_HAVE_CBLAS)
namespace {

// Rows [begin, end) of `m` that the calling thread of the current OpenMP team owns.
std::pair<std::int64_t, std::int64_t> thread_share(std::int64_t m) {
#if defined(_OPENMP)
  const std::int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
#else
  const std::int64_t t = 0, threads = 1;
#endif
  return {m * t / threads, m * (t + 1) / threads};
}

// One CBLAS call on rows [i0, i1) of C: op(A) row i starts at a + i*lda untransposed and
// at a + i transposed.
template <typename T>
void blas_rows(const GemmArgs<T>& g, std::int64_t i0, std::int64_t i1) {
  const auto ta = g.trans_a == Trans::no ? CblasNoTrans : CblasTrans;
  const auto tb = g.trans_b == Trans::no ? CblasNoTrans : CblasTrans;
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  const T* a = g.a + (g.trans_a == Trans::no ? i0 * g.lda : i0);
  T* c = g.c + i0 * g.ldc;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, i(i1 - i0), i(g.n), i(g.k), g.alpha, a, i(g.lda), g.b,
                i(g.ldb), g.beta, c, i(g.ldc));
  else
    cblas_dgemm(CblasRowMajor, ta, tb, i(i1 - i0), i(g.n), i(g.k), g.alpha, a, i(g.lda), g.b,
                i(g.ldb), g.beta, c, i(g.ldc));
}

// OpenBLAS's pthread build keeps its worker threads spinning for a while after every
// call, which starves the OpenMP loops of the kernels that follow (measured on 2 cores:
// a RMSNorm-GEMM-GELU-GEMM loop ran 5x slower). So BLAS runs single-threaded and
// OpenMP splits the rows of C instead: one thread pool for the whole backend.
void use_single_threaded_blas() {
#if defined(OPENBLAS_VERSION)
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
#endif
}

}  // namespace
#endif

template <typename T>
void gemm(const GemmArgs<T>& g) {
  if (g.m == 0 || g.n == 0) return;
#if defined(RATRAIN_HAVE_CBLAS)
  // CBLAS takes int sizes (LP64 OpenBLAS); larger problems take the portable path, and
  // so does k == 0, where CBLAS would reject the zero leading dimensions.
  const bool fits = std::max({g.m, g.n, g.k, g.lda, g.ldb, g.ldc}) <= INT_MAX;
  if (fits && g.k > 0) {
    use_single_threaded_blas();
#pragma omp parallel
    {
      const auto [i0, i1] = thread_share(g.m);
      if (i0 < i1) blas_rows(g, i0, i1);
    }
    return;
  }
#endif
  gemm_blocked(g);
}

template void gemm<float>(const GemmArgs<float>&);
template void gemm<double>(const GemmArgs<double>&);
template void gemm_blocked<float>(const GemmArgs<float>&);
template void gemm_blocked<double>(const GemmArgs<double>&);

}  // namespace ratrain::cpu
