// MpiRuntime: MPI's lifetime as an RAII object, one per process, made first in main().
//
// Starts MPI (MPI_Init_thread, MPI_THREAD_FUNNELED: only the main thread calls MPI;
// OpenMP threads inside kernels never do) unless something else already did, and then
// finalizes it on destruction. Works under mpirun and as a single process started
// without it (an MPI singleton, world size 1).
//
// Invariants: after construction MPI_COMM_WORLD has the MPI_ERRORS_RETURN handler, so
// MPI errors reach RT_CHECK_MPI as codes (mpi_check.hpp); MPI is finalized only by the
// MpiRuntime that initialized it.
#pragma once

namespace ratrain {

class MpiRuntime {
 public:
  // argc/argv are main()'s (MPI may consume its own arguments); both may be null.
  MpiRuntime(int* argc, char*** argv);
  // Finalizes MPI if this object started it. While an exception unwinds through it in a
  // job of several ranks it aborts the job instead: MPI_Finalize would wait for ranks
  // that may be stuck in a collective with this one (STYLE.md item 1).
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  // After an error on this rank: in a job of several ranks, ends every rank now
  // (MPI_Abort) with `status`; alone, returns and leaves the exit to the caller.
  void abort_job(int status) const;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }

 private:
  bool owns_mpi_ = false;  // this object called MPI_Init_thread
  int world_rank_ = 0;
  int world_size_ = 1;
};

}  // namespace ratrain
