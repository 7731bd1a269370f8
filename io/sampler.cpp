// SampleOrder: Feistel permutation with cycle-walking (see sampler.hpp).
#include "io/sampler.hpp"

#include <algorithm>
#include <bit>

#include "runtime/error.hpp"
#include "runtime/rng.hpp"

namespace ratrain {
namespace {
// Luby-Rackoff: 4 rounds of a pseudo-random function already give a strong
// pseudo-random permutation; 6 leave a margin at negligible cost.
constexpr int kRounds = 6;
}  // namespace

SampleOrder::SampleOrder(std::int64_t num_samples, std::uint64_t seed, bool shuffle)
    : num_samples_(num_samples), seed_(seed), shuffle_(shuffle) {
  RT_REQUIRE(num_samples > 0, "a sample order needs at least one sample (got ", num_samples, ")");
  const int bits = std::bit_width(static_cast<std::uint64_t>(num_samples - 1));
  half_bits_ = std::max(1, (bits + 1) / 2);
}

std::uint64_t SampleOrder::feistel(std::uint64_t x, std::uint64_t epoch) const {
  const std::uint64_t mask = (std::uint64_t{1} << half_bits_) - 1;  // half_bits_ <= 32
  std::uint64_t left = x >> half_bits_, right = x & mask;
  for (int round = 0; round < kRounds; ++round) {
    const auto block =
        philox4x32({static_cast<std::uint32_t>(right), static_cast<std::uint32_t>(round),
                    static_cast<std::uint32_t>(epoch), static_cast<std::uint32_t>(epoch >> 32)},
                   {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
    const std::uint64_t f = ((static_cast<std::uint64_t>(block[1]) << 32) | block[0]) & mask;
    const std::uint64_t next_right = left ^ f;
    left = right;
    right = next_right;
  }
  return (left << half_bits_) | right;
}

std::int64_t SampleOrder::sample_at(std::int64_t global_index) const {
  RT_REQUIRE(global_index >= 0, "global sample index must be >= 0 (got ", global_index, ")");
  const auto n = static_cast<std::uint64_t>(num_samples_);
  const auto epoch = static_cast<std::uint64_t>(global_index) / n;
  std::uint64_t x = static_cast<std::uint64_t>(global_index) % n;
  if (!shuffle_) return static_cast<std::int64_t>(x);
  // Cycle-walking: the network permutes [0, 2^b); following its cycle from x < N until
  // it re-enters [0, N) restricts it to a permutation of [0, N).
  do {
    x = feistel(x, epoch);
  } while (x >= n);
  return static_cast<std::int64_t>(x);
}

}  // namespace ratrain
