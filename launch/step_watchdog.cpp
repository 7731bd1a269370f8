// The deadline thread of step_watchdog.hpp.
#include "launch/step_watchdog.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "runtime/error.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

// One write(2) to stderr, retried on partial writes and EINTR. Not log_line: it takes the
// log's mutex and stdio's stream lock, which the hung main thread may hold (blocked in a
// write to a full pipe, say); fd 2 is unbuffered, so the line is out when this returns.
void write_stderr(const char* text, std::size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(STDERR_FILENO, text, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // nowhere to report to; the exit status still tells
    text += written;
    size -= static_cast<std::size_t>(written);
  }
}

}  // namespace

StepWatchdog::StepWatchdog(std::int64_t timeout_s, int world_rank)
    : timeout_(timeout_s), rank_(world_rank), host_(host_name()) {
  RT_REQUIRE(timeout_s >= 0, "train.hang_timeout_s must be >= 0 (got ", timeout_s, ")");
  if (timeout_s > 0) thread_ = std::thread([this] { watch(); });
}

StepWatchdog::~StepWatchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  armed_changed_.notify_one();
  thread_.join();
}

void StepWatchdog::arm(std::int64_t iteration, const char* what) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    armed_ = true;
    iteration_ = iteration;
    what_ = what;
    armed_at_ = Clock::now();
  }
  // Wakes a thread that waits with nothing armed; one waiting for an earlier deadline
  // would find the new one on waking anyway.
  armed_changed_.notify_one();
}

void StepWatchdog::disarm() {
  if (!thread_.joinable()) return;
  // No notify: the thread wakes at the old deadline, finds nothing armed, and waits.
  std::lock_guard lock(mutex_);
  armed_ = false;
}

void StepWatchdog::watch() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!armed_) {
      armed_changed_.wait(lock);
      continue;
    }
    // Re-read after every wake-up: the phase may have been re-armed or disarmed.
    const Clock::time_point deadline = armed_at_ + timeout_;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) fire(now);
    armed_changed_.wait_until(lock, deadline);
  }
}

void StepWatchdog::fire(Clock::time_point now) const {
  // The seconds actually waited: a process that was stopped and resumed past its deadline
  // says how long its phase took, not only the timeout.
  const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - armed_at_);
  char phase[96];
  if (what_ && iteration_ == 0)
    std::snprintf(phase, sizeof phase, "%s before the first iteration", what_);
  else if (what_)
    std::snprintf(phase, sizeof phase, "%s after iteration %lld", what_,
                  static_cast<long long>(iteration_));
  else
    std::snprintf(phase, sizeof phase, "iteration %lld", static_cast<long long>(iteration_));
  char line[1024];
  const int size = std::snprintf(
      line, sizeof line,
      "[%8.1fs] error: rank %d on %s: %s has not finished after %lld s "
      "(train.hang_timeout_s = %lld); aborting the job with exit status %d so that the "
      "launcher ends every rank\n",
      seconds_since_start(), rank_, host_.c_str(), phase, static_cast<long long>(waited.count()),
      static_cast<long long>(timeout_.count()), kExitHang);
  if (size > 0)
    write_stderr(line, std::min(static_cast<std::size_t>(size), sizeof line - 1));
  std::_Exit(kExitHang);
}

}  // namespace ratrain
