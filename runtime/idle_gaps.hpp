// How busy a device was over a window of time, from the [begin, end) intervals of the
// work it ran (kernels, copies, memsets; runtime/gpu_activity.hpp records them): what
// `ratrain bench --gaps` reports as the launch gaps of a training step (issue #3: "the
// step has no launch gaps worth measuring"). Pure arithmetic, no device.
//
// Worked example: window [0, 100), work [10, 30), [20, 40), [70, 80), min gap 15:
// busy = union [10, 40) + [70, 80) = 40; idle stretches [0, 10), [40, 70), [80, 100)
// of 10, 30 and 20; two of them >= 15 (50 in all); the largest 30.
#pragma once

#include <cstdint>
#include <vector>

namespace ratrain {

struct TimeInterval {
  std::uint64_t begin = 0, end = 0;  // nanoseconds, end exclusive
};

struct IdleGaps {
  std::uint64_t window_ns = 0;
  std::uint64_t busy_ns = 0;        // the union of the work intervals, within the window
  std::int64_t count = 0;           // idle stretches of at least min_gap_ns
  std::uint64_t total_ns = 0;       // their summed length
  std::uint64_t largest_ns = 0;     // the longest idle stretch, whatever its length

  double busy_fraction() const {
    return window_ns ? static_cast<double>(busy_ns) / static_cast<double>(window_ns) : 0.0;
  }
};

// Intervals may overlap (concurrent kernels) and extend past the window (clipped).
IdleGaps idle_gaps(std::vector<TimeInterval> work, TimeInterval window, std::uint64_t min_gap_ns);

}  // namespace ratrain
