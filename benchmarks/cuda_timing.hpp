// Timing of GPU work for the benchmarks, by the same method as the PyTorch baselines
// (benchmarks/torch/bench_common.py time_cuda_ms), so that the two sides' figures compare:
// `warmup` untimed calls (first-call costs: allocations, cuBLASLt heuristics), then
// `iters` calls enqueued back to back, each bracketed by CUDA events on the stream the
// work runs on, one synchronisation at the end, and the median of the per-call times.
// CUDA build only.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "runtime/cuda_check.hpp"

namespace ratrain::bench {

struct TimingConfig {
  int warmup = 3;
  int iters = 10;
};

// A CUDA event with timing enabled, destroyed with its owner.
class TimingEvent {
 public:
  TimingEvent() { RT_CHECK_CUDA(cudaEventCreate(&event_)); }
  ~TimingEvent() {
    if (event_) (void)cudaEventDestroy(event_);  // no throwing from a destructor
  }
  TimingEvent(TimingEvent&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  TimingEvent& operator=(TimingEvent&&) = delete;
  TimingEvent(const TimingEvent&) = delete;
  TimingEvent& operator=(const TimingEvent&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// Median of values (the mean of the two middle ones for an even count), as Python's
// statistics.median.
inline double median(std::vector<double> values) {
  RT_ASSERT(!values.empty());
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// Median milliseconds of fn(), which must enqueue its work on `stream`.
template <typename Fn>
double median_ms(Fn&& fn, const TimingConfig& timing, cudaStream_t stream) {
  RT_REQUIRE(timing.iters > 0, "timing needs at least one iteration, got ", timing.iters);
  for (int i = 0; i < timing.warmup; ++i) fn();
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<TimingEvent> starts(static_cast<std::size_t>(timing.iters));
  std::vector<TimingEvent> stops(static_cast<std::size_t>(timing.iters));
  for (std::size_t i = 0; i < starts.size(); ++i) {
    RT_CHECK_CUDA(cudaEventRecord(starts[i].get(), stream));
    fn();
    RT_CHECK_CUDA(cudaEventRecord(stops[i].get(), stream));
  }
  RT_CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> ms;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    float elapsed = 0;
    RT_CHECK_CUDA(cudaEventElapsedTime(&elapsed, starts[i].get(), stops[i].get()));
    ms.push_back(elapsed);
  }
  return median(std::move(ms));
}

}  // namespace ratrain::bench
