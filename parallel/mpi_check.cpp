// The error description of RT_CHECK_MPI. Its own MPI calls are deliberately unchecked:
// it runs while reporting a failure, and a second failure must not hide the first.
#include "parallel/mpi_check.hpp"

namespace ratrain::detail {

std::string mpi_describe(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  std::string message = MPI_Error_string(code, text, &length) == MPI_SUCCESS
                            ? std::string(text, static_cast<std::size_t>(length))
                            : concat("MPI error code ", code);
  // The world rank tells which process of the job failed, even before a
  // ParallelContext has set the rank that report_failure prints.
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int rank = -1;
  int size = 0;
  if (initialized && !finalized && MPI_Comm_rank(MPI_COMM_WORLD, &rank) == MPI_SUCCESS &&
      MPI_Comm_size(MPI_COMM_WORLD, &size) == MPI_SUCCESS)
    message += concat(" (MPI world rank ", rank, " of ", size, ")");
  return message;
}

}  // namespace ratrain::detail
