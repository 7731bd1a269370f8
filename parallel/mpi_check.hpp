// The MPI checker (STYLE.md item 1):
//   RT_CHECK_MPI(call)   any MPI call returning an error code
// Failures go through the one reporter of runtime/error.hpp, quoting the call as
// written, with MPI's error string and the world rank.
//
// Invariant: every communicator ratrain calls MPI on has the MPI_ERRORS_RETURN handler
// (set by MpiRuntime on MPI_COMM_WORLD and by every Group on the communicator it owns),
// so an error comes back here as a code instead of aborting inside MPI.
#pragma once

#include <mpi.h>

#include <string>

#include "runtime/error.hpp"

namespace ratrain::detail {
inline bool mpi_ok(int code) { return code == MPI_SUCCESS; }
// "MPI_ERR_RANK: invalid rank (MPI world rank 1 of 4)".
std::string mpi_describe(int code);
}  // namespace ratrain::detail

#define RT_CHECK_MPI(call)                                                             \
  RT_CHECK_WITH_TEXT("MPI call failed", call, #call, ::ratrain::detail::mpi_ok,        \
                     ::ratrain::detail::mpi_describe)
