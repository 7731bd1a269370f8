// The groups of a rank in the DP x PP x SP x TP layout (DESIGN.md "Parallel layout"),
// passed explicitly as a value to whatever needs a collective (STYLE.md item 5).
//
// Invariants: the four groups are made once, in create(), and are exactly the member
// lists of place_rank (rank_layout.hpp) for this rank, each ordered by its coordinate
// (tp.rank() == coords.tp, ...). single_process() is the layout of one rank, with no
// MPI at all.
#pragma once

#include "parallel/group.hpp"
#include "parallel/rank_layout.hpp"

namespace ratrain {

struct ParallelContext {
  Group tp = Group::single();
  Group sp = Group::single();
  Group pp = Group::single();
  Group dp = Group::single();
  ParallelSizes sizes;
  RankCoords coords;
  int world_rank = 0;
  int world_size = 1;
  // Rank among the processes of this node: the GPU this rank drives. From MPI's
  // shared-memory split, never from a hostfile (DESIGN.md "Parallel layout").
  int local_rank = 0;

  static ParallelContext single_process() { return {}; }
  // Lays `world` (every rank of the job, e.g. group_from_mpi(MPI_COMM_WORLD)) out by
  // `sizes`, whose product must be world.size(). Collective over `world`. Also sets the
  // rank that log lines and error messages show (runtime/log.hpp). For a run on
  // Device::cuda it binds GPU `local_rank` and makes the four groups take device tensors
  // (NCCL communicators, made here once).
  static ParallelContext create(const Group& world, const ParallelSizes& sizes,
                                Device device = Device::cpu);

  const Group& group(Axis axis) const { return field_of(*this, axis); }
};

}  // namespace ratrain
