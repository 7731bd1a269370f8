// Error reporting for every ratrain library (STYLE.md item 1).
//
// One [[noreturn]] reporter formats the failed statement, its location, the rank and
// the host, and throws ratrain::Error. Library code never calls exit(): the command
// line front end catches the error, prints it and exits non-zero; under MPI it aborts
// the job so that no rank waits forever in a collective.
//
// Checker macros:
//   RT_REQUIRE(cond, msg...)   user-facing precondition (bad config, file, shape)
//   RT_ASSERT(cond)            internal invariant (a bug in ratrain if it fires)
// Each library that wraps a C API defines its checker on RT_CHECK_WITH next to the
// wrapper (HDF5 in io/h5.cpp, CUDA in runtime/cuda_check.hpp, MPI in
// parallel/mpi_check.hpp; NCCL with its backend).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ratrain {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Rank printed in error messages; set once by the parallel context.
void set_error_rank(int rank);
int error_rank();

[[noreturn]] void report_failure(const char* kind, const char* statement, const char* file,
                                 int line, const std::string& detail);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace ratrain

#define RT_REQUIRE(cond, ...)                                                          \
  do {                                                                                 \
    if (!(cond)) [[unlikely]]                                                          \
      ::ratrain::report_failure("invalid input", #cond, __FILE__, __LINE__,            \
                                ::ratrain::detail::concat(__VA_ARGS__));               \
  } while (0)

#define RT_ASSERT(cond)                                                                \
  do {                                                                                 \
    if (!(cond)) [[unlikely]]                                                          \
      ::ratrain::report_failure("internal error", #cond, __FILE__, __LINE__, "");      \
  } while (0)

#define RT_FAIL(...)                                                                   \
  ::ratrain::report_failure("error", "", __FILE__, __LINE__,                           \
                            ::ratrain::detail::concat(__VA_ARGS__))

// RT_CHECK_WITH(kind, call, is_ok, describe): the checker generator. Fails when
// is_ok(result) is false, with describe(result) as the detail.
#define RT_CHECK_WITH(kind, call, is_ok, describe) \
  RT_CHECK_WITH_TEXT(kind, call, #call, is_ok, describe)

// The generator with the statement's text passed in: a checker macro stringizes its own
// argument so that the message quotes the call as written. Forwarded to RT_CHECK_WITH,
// the argument would be macro-expanded first (MPI_COMM_WORLD, for one, would read
// `((MPI_Comm) &(ompi_mpi_comm_world))`).
#define RT_CHECK_WITH_TEXT(kind, call, text, is_ok, describe)                          \
  do {                                                                                 \
    auto rt_result_ = (call);                                                          \
    if (!(is_ok(rt_result_))) [[unlikely]]                                             \
      ::ratrain::report_failure(kind, text, __FILE__, __LINE__, describe(rt_result_));  \
  } while (0)
