// CommunicationScope (parallel/communication_clock.hpp): the time inside a scope is added
// to communication_seconds() once, however deeply scopes nest.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "parallel/communication_clock.hpp"

namespace ratrain {
namespace {

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST(CommunicationClock, AScopeAddsItsLifetime) {
  const double before = communication_seconds();
  {
    const CommunicationScope timed;
    sleep_ms(30);
  }
  const double spent = communication_seconds() - before;
  EXPECT_GE(spent, 0.029);
  EXPECT_LT(spent, 1.0);
  sleep_ms(20);  // outside any scope: not counted
  EXPECT_EQ(communication_seconds() - before, spent);
}

TEST(CommunicationClock, NestedScopesCountOnce) {
  const double before = communication_seconds();
  {
    const CommunicationScope outer;
    sleep_ms(20);
    {
      const CommunicationScope inner;  // e.g. a wait inside a collective
      sleep_ms(20);
    }
  }
  const double spent = communication_seconds() - before;
  EXPECT_GE(spent, 0.039);
  EXPECT_LT(spent, 0.075) << "the inner 20 ms must not be counted twice";
}

}  // namespace
}  // namespace ratrain
