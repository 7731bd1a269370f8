// The arithmetic of runtime/rng.hpp's counter-based generator (Philox4x32-10, Salmon et
// al., SC'11, and the normal draw built on it), written once for host and device: the
// parameter initialisation runs it on the GPU (kernels/cuda/init.cu) and must draw the
// numbers CounterRng draws on the host.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RT_PHILOX_HD __host__ __device__
#else
#define RT_PHILOX_HD
#endif

namespace ratrain::philox {

struct Block {
  std::uint32_t w[4];
};

RT_PHILOX_HD inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                 std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

// Ten rounds on a 128-bit counter with a 64-bit key.
RT_PHILOX_HD inline Block rounds(Block c, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c.w[0], hi0, lo0);
    mulhilo(kMul1, c.w[2], hi1, lo1);
    c = {{hi1 ^ c.w[1] ^ key0, lo1, hi0 ^ c.w[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return c;
}

// CounterRng's block for element `index`: counter (index, seed), key the stream key.
RT_PHILOX_HD inline Block element_block(std::uint64_t seed, std::uint64_t key,
                                        std::uint64_t index) {
  return rounds({{static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                  static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}},
                static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32));
}

// 53 random bits -> (0, 1), never exactly 0 or 1.
RT_PHILOX_HD inline double to_unit(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = ((static_cast<std::uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(bits) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal from one block (Box-Muller). The libm calls are the C ones (glibc on
// the host, CUDA's on the device: both within an ulp or two of the exact double, so the
// host and the device draw the same value up to the last bits of a double).
RT_PHILOX_HD inline double normal_of(const Block& r) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double u1 = to_unit(r.w[0], r.w[1]);
  const double u2 = to_unit(r.w[2], r.w[3]);
  return ::sqrt(-2.0 * ::log(u1)) * ::cos(kTwoPi * u2);
}

}  // namespace ratrain::philox
