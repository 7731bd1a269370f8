// Test helper shared by the unit tests: the message of the ratrain::Error a call throws.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "runtime/error.hpp"

namespace ratrain {

// Runs `fn`, requires a ratrain::Error and returns its message.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ratrain::Error";
  return {};
}

}  // namespace ratrain
