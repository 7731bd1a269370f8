#include "runtime/log.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>

namespace ratrain {
namespace {
int g_rank = 0;
int g_world = 1;
const auto g_start = std::chrono::steady_clock::now();
std::mutex g_mutex;
}  // namespace

void set_log_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
  set_error_rank(rank);
}

double seconds_since_start() { return seconds_since(g_start); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f s", seconds);
  return text;
}

void log_line(LogLevel level, const std::string& message) {
  // Warnings and errors from every rank; information from rank 0 only.
  if (level == LogLevel::info && g_rank != 0) return;
  const char* tag = level == LogLevel::info ? "" : level == LogLevel::warn ? "warning: " : "error: ";
  std::lock_guard lock(g_mutex);
  FILE* stream = level == LogLevel::info ? stdout : stderr;
  if (g_world > 1)
    std::fprintf(stream, "[%8.1fs r%d] %s%s\n", seconds_since_start(), g_rank, tag, message.c_str());
  else
    std::fprintf(stream, "[%8.1fs] %s%s\n", seconds_since_start(), tag, message.c_str());
  std::fflush(stream);
}

}  // namespace ratrain
