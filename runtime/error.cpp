#include "runtime/error.hpp"

#include <unistd.h>

#include <atomic>

namespace ratrain {
namespace {
std::atomic<int> g_rank{0};

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}
}  // namespace

void set_error_rank(int rank) { g_rank = rank; }
int error_rank() { return g_rank; }

void report_failure(const char* kind, const char* statement, const char* file, int line,
                    const std::string& detail) {
  std::ostringstream msg;
  msg << kind;
  if (!detail.empty()) msg << ": " << detail;
  msg << " [rank " << g_rank.load() << " on " << host_name() << ", " << file << ":" << line;
  if (statement && *statement) msg << ", `" << statement << "`";
  msg << "]";
  throw Error(msg.str());
}


}  // namespace ratrain
