#include "runtime/rng.hpp"

#include "runtime/philox.hpp"

namespace ratrain {

std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> ctr,
                                        std::array<std::uint32_t, 2> key) {
  const philox::Block r = philox::rounds({{ctr[0], ctr[1], ctr[2], ctr[3]}}, key[0], key[1]);
  return {r.w[0], r.w[1], r.w[2], r.w[3]};
}

double CounterRng::uniform(std::uint64_t index) const {
  const philox::Block r = philox::element_block(seed_, key_, index);
  return philox::to_unit(r.w[0], r.w[1]);
}

double CounterRng::normal(std::uint64_t index) const {
  return philox::normal_of(philox::element_block(seed_, key_, index));
}

std::uint64_t CounterRng::below(std::uint64_t index, std::uint64_t bound) const {
  const philox::Block r = philox::element_block(seed_, key_, index);
  const std::uint64_t x = (static_cast<std::uint64_t>(r.w[0]) << 32) | r.w[1];
  // Lemire's multiply-shift: the high 64 bits of x * bound (GCC/Clang 128-bit type).
  __extension__ using u128 = unsigned __int128;
  return static_cast<std::uint64_t>((static_cast<u128>(x) * bound) >> 64);
}

}  // namespace ratrain
