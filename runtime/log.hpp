// Logging: one line per message, prefixed with the wall time since start and, in
// multi-rank runs, the rank. Progress lines go to stdout on rank 0 only.
#pragma once

#include <chrono>
#include <string>

#include "runtime/error.hpp"

namespace ratrain {

enum class LogLevel { info, warn, error };

void set_log_rank(int rank, int world_size);
void log_line(LogLevel level, const std::string& message);
double seconds_since_start();
// Seconds on the steady clock since `start`: timing for log lines and benchmarks.
double seconds_since(std::chrono::steady_clock::time_point start);
// "1.234 s": a duration as log lines print it.
std::string seconds_text(double seconds);

template <typename... Args>
void log_info(const Args&... args) {
  log_line(LogLevel::info, detail::concat(args...));
}
template <typename... Args>
void log_warn(const Args&... args) {
  log_line(LogLevel::warn, detail::concat(args...));
}

}  // namespace ratrain
