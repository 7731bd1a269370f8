#include "runtime/rng.hpp"

#include <cmath>
#include <numbers>

namespace ratrain {
namespace {
constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

// 53 random bits -> (0, 1), never exactly 0 or 1.
inline double to_unit(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = ((static_cast<std::uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(bits) + 0.5) * (1.0 / 9007199254740992.0);
}
}  // namespace

std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> ctr,
                                        std::array<std::uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, ctr[0], hi0, lo0);
    mulhilo(kMul1, ctr[2], hi1, lo1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return ctr;
}

std::array<std::uint32_t, 4> CounterRng::block(std::uint64_t index) const {
  // Counter = (index, seed); key = stream key (name hash).
  return philox4x32({static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                     static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)},
                    {static_cast<std::uint32_t>(key_), static_cast<std::uint32_t>(key_ >> 32)});
}

double CounterRng::uniform(std::uint64_t index) const {
  const auto r = block(index);
  return to_unit(r[0], r[1]);
}

double CounterRng::normal(std::uint64_t index) const {
  const auto r = block(index);
  const double u1 = to_unit(r[0], r[1]);
  const double u2 = to_unit(r[2], r[3]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t CounterRng::below(std::uint64_t index, std::uint64_t bound) const {
  const auto r = block(index);
  const std::uint64_t x = (static_cast<std::uint64_t>(r[0]) << 32) | r[1];
  // Lemire's multiply-shift: the high 64 bits of x * bound (GCC/Clang 128-bit type).
  __extension__ using u128 = unsigned __int128;
  return static_cast<std::uint64_t>((static_cast<u128>(x) * bound) >> 64);
}

}  // namespace ratrain
