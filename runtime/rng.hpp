// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
//
// A value depends only on (seed, stream key, element index), never on call order,
// so every parallel layout initialises each parameter element identically: the key
// is a hash of the parameter's name and the index its position in the *global*
// tensor (DESIGN.md principle 4).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace ratrain {

// 64-bit FNV-1a hash of a name, used as the Philox stream key.
constexpr std::uint64_t stream_key(std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// Philox4x32-10 block: four 32-bit random words for a 128-bit counter and 64-bit key
// (the arithmetic, shared with the device: runtime/philox.hpp).
std::array<std::uint32_t, 4> philox4x32(std::array<std::uint32_t, 4> counter,
                                        std::array<std::uint32_t, 2> key);

class CounterRng {
 public:
  CounterRng(std::uint64_t seed, std::uint64_t key) : seed_(seed), key_(key) {}
  CounterRng(std::uint64_t seed, std::string_view name) : CounterRng(seed, stream_key(name)) {}

  // Uniform in the open interval (0, 1) for element `index`.
  double uniform(std::uint64_t index) const;
  // Standard normal for element `index` (Box-Muller on one Philox block).
  double normal(std::uint64_t index) const;
  // Uniform integer in [0, bound) for `index` (bound > 0; bias below 2^-32).
  std::uint64_t below(std::uint64_t index, std::uint64_t bound) const;

  std::uint64_t seed() const { return seed_; }
  std::uint64_t key() const { return key_; }

 private:
  std::uint64_t seed_;
  std::uint64_t key_;
};

}  // namespace ratrain
