// Busy time and idle gaps of a window (see idle_gaps.hpp).
#include "runtime/idle_gaps.hpp"

#include <algorithm>

namespace ratrain {

IdleGaps idle_gaps(std::vector<TimeInterval> work, TimeInterval window, std::uint64_t min_gap_ns) {
  IdleGaps gaps;
  if (window.end <= window.begin) return gaps;
  gaps.window_ns = window.end - window.begin;
  const auto idle = [&](std::uint64_t length) {
    gaps.largest_ns = std::max(gaps.largest_ns, length);
    if (length > 0 && length >= min_gap_ns) {
      ++gaps.count;
      gaps.total_ns += length;
    }
  };
  std::sort(work.begin(), work.end(),
            [](const TimeInterval& a, const TimeInterval& b) { return a.begin < b.begin; });
  std::uint64_t covered = window.begin;  // everything before is busy or counted idle
  for (const TimeInterval& w : work) {
    const std::uint64_t begin = std::max(w.begin, window.begin);
    const std::uint64_t end = std::min(w.end, window.end);
    if (end <= begin || end <= covered) continue;
    if (begin > covered) idle(begin - covered);
    gaps.busy_ns += end - std::max(begin, covered);
    covered = end;
  }
  idle(window.end - covered);
  return gaps;
}

}  // namespace ratrain
