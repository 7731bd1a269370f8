// Host time in communication calls (see communication_clock.hpp).
#include "parallel/communication_clock.hpp"

#include <atomic>
#include <chrono>

namespace ratrain {
namespace {

std::atomic<double> total_seconds{0.0};
thread_local int depth = 0;  // scopes open on this thread

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

double communication_seconds() { return total_seconds.load(std::memory_order_relaxed); }

CommunicationScope::CommunicationScope() : outermost_(depth++ == 0) {
  if (outermost_) start_ = now();
}

CommunicationScope::~CommunicationScope() {
  --depth;
  if (!outermost_) return;
  total_seconds.fetch_add(now() - start_, std::memory_order_relaxed);
}

}  // namespace ratrain
