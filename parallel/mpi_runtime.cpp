// MPI start-up and shutdown (see mpi_runtime.hpp).
#include "parallel/mpi_runtime.hpp"

#include <mpi.h>

#include <exception>

#include "parallel/mpi_check.hpp"
#include "runtime/log.hpp"

namespace ratrain {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  int finalized = 0;
  RT_CHECK_MPI(MPI_Initialized(&initialized));
  RT_CHECK_MPI(MPI_Finalized(&finalized));
  RT_REQUIRE(!finalized, "MPI was already finalized in this process; it cannot be restarted");
  if (!initialized) {
    int provided = 0;
    RT_CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    owns_mpi_ = true;
    RT_REQUIRE(provided >= MPI_THREAD_FUNNELED,
               "this MPI library offers no MPI_THREAD_FUNNELED support (thread level ", provided,
               ")");
  }
  RT_CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  RT_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  RT_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
}

void MpiRuntime::abort_job(int status) const {
  if (world_size_ > 1) MPI_Abort(MPI_COMM_WORLD, status);
}

MpiRuntime::~MpiRuntime() {
  if (!owns_mpi_) return;
  if (std::uncaught_exceptions() > 0 && world_size_ > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  // A destructor must not throw: a failure to finalize is logged instead.
  if (const int code = MPI_Finalize(); code != MPI_SUCCESS)
    log_warn("MPI_Finalize failed: ", detail::mpi_describe(code));
}

}  // namespace ratrain
