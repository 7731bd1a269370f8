// launch/step_watchdog.hpp: a phase armed longer than the timeout ends the process with
// kExitHang and one stderr line naming rank, phase, iteration and seconds; a disabled
// watchdog, phases that end in time and a disarmed one never fire; the destructor
// returns at once. A firing watchdog ends the whole process, so the tests that expect
// none run in this process (a fire fails the test binary with status 70 and its line),
// the ones that expect it in gtest death tests.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "launch/step_watchdog.hpp"
#include "runtime/error.hpp"

namespace ratrain {
namespace {

using namespace std::chrono_literals;

// The watchdog's thread runs when the death test forks: "threadsafe" re-executes the
// test binary up to the death test instead of forking a process with threads.
class StepWatchdogDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST(StepWatchdog, DisabledNeverFires) {
  StepWatchdog watchdog(0, 0);
  watchdog.arm(1);
  std::this_thread::sleep_for(1500ms);
  watchdog.disarm();
}

// Phases of 0.2 s under a 1 s timeout for 2.4 s in all: the clock restarts at each arm.
TEST(StepWatchdog, PhasesWithinTheTimeoutNeverFire) {
  StepWatchdog watchdog(1, 0);
  for (std::int64_t iteration = 1; iteration <= 12; ++iteration) {
    watchdog.arm(iteration);
    std::this_thread::sleep_for(200ms);
    watchdog.disarm();
  }
  // Re-arming without a disarm in between starts a new phase too.
  for (std::int64_t iteration = 13; iteration <= 17; ++iteration) {
    watchdog.arm(iteration, "checkpoint finish");
    std::this_thread::sleep_for(300ms);
  }
}

TEST(StepWatchdog, DisarmedNeverFires) {
  StepWatchdog watchdog(1, 0);
  watchdog.arm(1);
  watchdog.disarm();
  std::this_thread::sleep_for(2s);
}

TEST(StepWatchdog, DestructorReturnsAtOnceWhileArmed) {
  const auto start = std::chrono::steady_clock::now();
  {
    StepWatchdog watchdog(3600, 0);
    watchdog.arm(1);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(StepWatchdogDeathTest, AnIterationPastTheTimeoutEndsTheProcess) {
  EXPECT_EXIT(
      {
        StepWatchdog watchdog(1, 3);
        watchdog.arm(7);
        std::this_thread::sleep_for(3s);
      },
      testing::ExitedWithCode(kExitHang),
      "error: rank 3 on .*: iteration 7 has not finished after 1 s \\(train.hang_timeout_s = 1\\); "
      "aborting the job with exit status 70");
}

// A phase armed at `iteration` as `what` that outlives a 1 s timeout on rank `rank` ends
// the process with a line matching `expected`.
void expect_phase_named(int rank, std::int64_t iteration, const char* what,
                        const std::string& expected) {
  EXPECT_EXIT(
      {
        StepWatchdog watchdog(1, rank);
        watchdog.arm(iteration, what);
        std::this_thread::sleep_for(3s);
      },
      testing::ExitedWithCode(kExitHang), expected);
}

TEST_F(StepWatchdogDeathTest, ANamedPhaseIsNamed) {
  expect_phase_named(0, 20, "final validation",
                     "rank 0 on .*: final validation after iteration 20 has not finished after 1 s");
}

TEST_F(StepWatchdogDeathTest, AStartUpPhaseIsNamed) {
  expect_phase_named(1, 0, "communicator set-up",
                     "rank 1 on .*: communicator set-up before the first iteration has not "
                     "finished after 1 s");
}

TEST(StepWatchdog, ANegativeTimeoutIsAnError) {
  EXPECT_THROW(StepWatchdog(-1, 0), Error);
}

}  // namespace
}  // namespace ratrain
