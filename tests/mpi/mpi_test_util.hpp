// Shared by the MPI tests: the world as a Group, the layouts that fit it, and a way to
// read a group's members back from MPI. Values fed to collectives are small integers
// (STYLE.md item 4), exact in f32 and f64, so every sum is checked bitwise.
#pragma once

#include <mpi.h>

#include <vector>

#include "parallel/mpi_group.hpp"
#include "parallel/rank_layout.hpp"

namespace ratrain {

inline Group world_group() { return group_from_mpi(MPI_COMM_WORLD); }

// The layouts the tests lay a world of `world_size` ranks out by.
inline std::vector<ParallelSizes> layouts_for(int world_size) {
  switch (world_size) {
    case 2:
      return {ParallelSizes{.tp = 2}, ParallelSizes{.sp = 2}, ParallelSizes{.pp = 2},
              ParallelSizes{.dp = 2}};
    case 4:
      return {ParallelSizes{.tp = 4}, ParallelSizes{.tp = 2, .sp = 2},
              ParallelSizes{.pp = 2, .dp = 2}, ParallelSizes{.tp = 2, .pp = 2},
              ParallelSizes{.sp = 2, .dp = 2}, ParallelSizes{.pp = 4}};
    default:
      return {ParallelSizes{.tp = world_size}, ParallelSizes{.dp = world_size}};
  }
}

// The world ranks of `group`'s members in group-rank order, gathered from the members
// themselves (each contributes `world_rank`). Collective over `group`.
inline std::vector<int> world_ranks_of(const Group& group, int world_rank) {
  Tensor mine = Tensor::empty({1}, DType::f32);
  mine.data<float>()[0] = static_cast<float>(world_rank);
  const Tensor all = group.all_gather(mine);
  std::vector<int> ranks;
  for (std::int64_t i = 0; i < all.numel(); ++i) ranks.push_back(static_cast<int>(all.item(i)));
  return ranks;
}

}  // namespace ratrain
