// The MPI backend of Group (group.hpp): where a multi-rank group comes from.
//
// A Group of several ranks owns a duplicate of the communicator it was made from, with
// the MPI_ERRORS_RETURN handler, so ratrain's traffic never mixes with the caller's
// and every error comes back through RT_CHECK_MPI (mpi_check.hpp).
#pragma once

#include <mpi.h>

#include "parallel/group.hpp"

namespace ratrain {

// A group over a duplicate of `comm` (the caller keeps `comm`), or Group::single() when
// `comm` has one rank. Collective over `comm`. Typically group_from_mpi(MPI_COMM_WORLD)
// once MpiRuntime (mpi_runtime.hpp) has started MPI.
Group group_from_mpi(MPI_Comm comm);

}  // namespace ratrain
