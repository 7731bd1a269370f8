// The CPU GEMM helper (kernels/cpu/gemm.hpp), both the dispatching gemm() (CBLAS when
// built with it) and the portable gemm_blocked(), against a naive triple loop in
// double: all four transpose cases, padded leading dimensions, sizes that are not
// multiples of the 64 x 256 x 256 tiles, beta 0 / 1 / 0.5, and k = 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/gemm.hpp"
#include "runtime/rng.hpp"

namespace ratrain::cpu {
namespace {

template <typename T>
std::vector<T> random_values(std::int64_t n, std::uint64_t key) {
  const CounterRng rng(7, key);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = T(rng.normal(std::uint64_t(i)));
  return v;
}

template <typename T>
class GemmTest : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GemmTest, Types);

// Relative error budget: sums of up to 270 products of unit normals, in T.
template <typename T> constexpr double kTolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;

TYPED_TEST(GemmTest, MatchesNaiveProduct) {
  using T = TypeParam;
  struct Size {
    std::int64_t m, n, k;
  };
  for (const Size s : {Size{70, 300, 270}, Size{1, 1, 1}, Size{3, 5, 2}, Size{4, 6, 0}})
    for (Trans ta : {Trans::no, Trans::yes})
      for (Trans tb : {Trans::no, Trans::yes})
        for (double beta : {0.0, 1.0, 0.5})
          for (bool blocked : {false, true}) {
            // Stored shapes: A (m, k) or (k, m), B (k, n) or (n, k); rows padded by 3.
            const std::int64_t a_rows = ta == Trans::no ? s.m : s.k;
            const std::int64_t lda = (ta == Trans::no ? s.k : s.m) + 3;
            const std::int64_t b_rows = tb == Trans::no ? s.k : s.n;
            const std::int64_t ldb = (tb == Trans::no ? s.n : s.k) + 3;
            const std::int64_t ldc = s.n + 3;
            const auto a = random_values<T>(a_rows * lda, 1);
            const auto b = random_values<T>(b_rows * ldb, 2);
            auto c = random_values<T>(s.m * ldc, 3);
            if (beta == 0) std::fill(c.begin(), c.end(), std::numeric_limits<T>::quiet_NaN());
            const auto c0 = c;
            const GemmArgs<T> args{.trans_a = ta, .trans_b = tb, .m = s.m, .n = s.n, .k = s.k,
                                   .alpha = T(1.5), .a = a.data(), .lda = lda, .b = b.data(),
                                   .ldb = ldb, .beta = T(beta), .c = c.data(), .ldc = ldc};
            blocked ? gemm_blocked(args) : gemm(args);

            double err = 0, ref_norm = 0;
            for (std::int64_t i = 0; i < s.m; ++i)
              for (std::int64_t j = 0; j < s.n; ++j) {
                double ref = 0;
                for (std::int64_t p = 0; p < s.k; ++p) {
                  const double av = ta == Trans::no ? a[i * lda + p] : a[p * lda + i];
                  const double bv = tb == Trans::no ? b[p * ldb + j] : b[j * ldb + p];
                  ref += av * bv;
                }
                ref = 1.5 * ref + (beta == 0 ? 0.0 : beta * double(c0[i * ldc + j]));
                err += std::pow(double(c[i * ldc + j]) - ref, 2);
                ref_norm += ref * ref;
              }
            EXPECT_LE(std::sqrt(err), kTolerance<T> * std::sqrt(ref_norm))
                << "m=" << s.m << " n=" << s.n << " k=" << s.k << " ta=" << int(ta)
                << " tb=" << int(tb) << " beta=" << beta << " blocked=" << blocked;
            // Padding columns of C are never written (NaN stays NaN).
            for (std::int64_t i = 0; i < s.m; ++i)
              for (std::int64_t j = s.n; j < ldc; ++j) {
                const T now = c[i * ldc + j], before = c0[i * ldc + j];
                EXPECT_TRUE(now == before || (std::isnan(now) && std::isnan(before)));
              }
          }
}

}  // namespace
}  // namespace ratrain::cpu
