// main() of every MPI test executable (tests/mpi/CMakeLists.txt): starts MPI through
// MpiRuntime, runs the gtest cases on every rank, and exits non-zero on EVERY rank if
// any rank failed, so that mpiexec and ctest report the failure whichever rank saw it.
//
// Output: rank 0 prints gtest's usual report; the other ranks print only their failures,
// prefixed with their rank. Exceptions are not caught by gtest: an unexpected one ends
// its rank at once (mpiexec then stops the job) instead of letting the test run on out
// of step with ranks waiting in a collective.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "parallel/mpi_check.hpp"
#include "parallel/mpi_runtime.hpp"

namespace {

// The report of a rank other than 0: its failed assertions and tests, nothing else.
class FailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}

  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::printf("[rank %d] %s:%d: Failure\n%s\n", rank_,
                result.file_name() ? result.file_name() : "?", result.line_number(),
                result.message());
    std::fflush(stdout);
  }
  void OnTestEnd(const testing::TestInfo& info) override {
    if (!info.result()->Failed()) return;
    std::printf("[rank %d] [  FAILED  ] %s.%s\n", rank_, info.test_suite_name(), info.name());
    std::fflush(stdout);
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  const ratrain::MpiRuntime mpi(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  GTEST_FLAG_SET(catch_exceptions, false);
  if (mpi.world_rank() != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(mpi.world_rank()));  // owned by gtest
  }
  const int failed_here = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int failed_anywhere = 0;
  RT_CHECK_MPI(MPI_Allreduce(&failed_here, &failed_anywhere, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (failed_anywhere && !failed_here)
    std::printf("[rank %d] passed here, but another rank failed\n", mpi.world_rank());
  return failed_anywhere;
}
