// Signal flags and the step-boundary agreement of stop_signals.hpp.
#include "launch/stop_signals.hpp"

#include <csignal>

#include "runtime/error.hpp"

namespace ratrain {
namespace {

// The last stop signal received, or 0. sig_atomic_t: what a handler may write.
volatile std::sig_atomic_t g_received = 0;
bool g_installed = false;
struct sigaction g_previous_usr1, g_previous_term;

void remember_signal(int signal) { g_received = signal; }

void install(int signal, struct sigaction* previous) {
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted system calls (file writes of the checkpoint thread, MPI's
  // sockets): the signal is handled at the step boundary, nothing needs waking.
  action.sa_flags = SA_RESTART;
  RT_REQUIRE(sigaction(signal, &action, previous) == 0, "sigaction(", signal, ") failed");
}

}  // namespace

StopSignals::StopSignals() {
  RT_ASSERT(!g_installed);
  g_received = 0;
  install(SIGUSR1, &g_previous_usr1);
  install(SIGTERM, &g_previous_term);
  g_installed = true;
}

StopSignals::~StopSignals() {
  sigaction(SIGUSR1, &g_previous_usr1, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
  g_installed = false;
}

int StopSignals::agreed(const Group& world) const {
  // One all-reduce carries both counts: ranks that saw SIGTERM in units of 2^24 (more
  // ranks than that do not exist), ranks that saw SIGUSR1 in ones. SIGTERM wins: either
  // stops the run alike, the message names the more urgent one.
  constexpr double kTermUnit = 1 << 24;
  const int mine = g_received;
  const double flags = world.all_reduce_sum((mine == SIGTERM ? kTermUnit : 0.0) +
                                            (mine == SIGUSR1 ? 1.0 : 0.0));
  if (flags >= kTermUnit) return SIGTERM;
  return flags > 0 ? SIGUSR1 : 0;
}

}  // namespace ratrain
