// The order in which training samples are visited (DESIGN.md principle 4: data order
// is a function of (seed, global sample index), never of the parallel layout).
//
// Global sample index g counts samples over the whole run. Epoch e = g / N and
// position i = g % N visit sample  sample_at(g) = P_{seed,e}(i),  where P_{seed,e} is
// a pseudo-random permutation of [0, N) that depends only on (seed, e): every sample
// is seen exactly once per epoch, each epoch in a new order, and any rank can compute
// any entry in O(1) without materialising the permutation.
//
// P is a keyed Feistel network on b-bit integers, b = 2 * ceil(bit_width(N - 1) / 2)
// (the smallest even width with 2^b >= N), made a bijection of [0, N) by cycle-walking:
// apply the network again while the result is >= N. Since 2^b < 4N, the expected
// number of walks is below 4. Each round's function is one Philox4x32-10 block keyed by
// the seed with counter (half, round, epoch), so rounds and epochs are independent.
//
// Worked example, N = 5, seed 7, epoch 0 (b = 4: the network permutes 0..15):
//   g = 0 (i = 0): F(0) = 12 >= 5 -> F(12) = 10 >= 5 -> F(10) = 3 < 5  => sample 3
//   epoch 0, g = 0..4: samples 3, 1, 0, 2, 4
//   epoch 1, g = 5..9: samples 1, 4, 3, 2, 0
// (tests/unit/io/test_sampler.cpp checks these values.)
#pragma once

#include <cstdint>

namespace ratrain {

class SampleOrder {
 public:
  // shuffle = false visits 0, 1, ..., N-1 in every epoch (validation sets).
  SampleOrder(std::int64_t num_samples, std::uint64_t seed, bool shuffle = true);

  std::int64_t num_samples() const { return num_samples_; }
  // The sample visited at global index `global_index` >= 0 (any epoch).
  std::int64_t sample_at(std::int64_t global_index) const;

 private:
  // One pass of the Feistel network over b = 2 * half_bits_ bits.
  std::uint64_t feistel(std::uint64_t x, std::uint64_t epoch) const;

  std::int64_t num_samples_;
  std::uint64_t seed_;
  bool shuffle_;
  int half_bits_;  // b / 2, at least 1
};

}  // namespace ratrain
