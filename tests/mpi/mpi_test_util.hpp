// Shared by the MPI tests: the world as a Group, the layouts that fit it, a way to read a
// group's members back from MPI, and the per-rank values the collective tests exchange. Values fed to collectives are small integers
// (STYLE.md item 4), exact in f32 and f64, so every sum is checked bitwise.
#pragma once

#include <mpi.h>

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "parallel/mpi_group.hpp"
#include "parallel/parallel_context.hpp"
#include "parallel/rank_layout.hpp"
#include "runtime/device_memory.hpp"

namespace ratrain {

inline Group world_group() { return group_from_mpi(MPI_COMM_WORLD); }

// Where the tensors under test live: tests built a second time with RATRAIN_TEST_ON_GPU
// (tests/gpu/mpi) run on one GPU per rank, their groups carrying device tensors through
// NCCL; otherwise on the CPU through MPI.
#ifdef RATRAIN_TEST_ON_GPU
inline constexpr Device kTestDevice = Device::cuda;
#else
inline constexpr Device kTestDevice = Device::cpu;
#endif

// Why a GPU build cannot run in this world (fewer GPUs than ranks on the node), or "" (also
// on the CPU). The same on every rank of a node, so all of them skip alike.
inline std::string missing_gpus() {
  if (kTestDevice == Device::cpu) return "";
  const int ranks = world_group().split_by_node().size();
  if (visible_gpus() >= ranks) return "";
  return "needs one GPU per rank: " + std::to_string(ranks) + " ranks on this node, " +
         std::to_string(visible_gpus()) + " GPU(s)";
}

// Rank m contributes value(m, i) = 100 * (m + 1) + i at element i.
inline double value(int world_rank, std::int64_t i) {
  return 100.0 * (world_rank + 1) + static_cast<double>(i);
}

// Sum over the members of value(m, i).
inline double sum_of_values(const std::vector<int>& members, std::int64_t i) {
  double sum = 0;
  for (const int m : members) sum += value(m, i);
  return sum;
}

// A host tensor of `dtype` whose element i is element(i).
inline Tensor filled(Shape shape, DType dtype,
                     const std::function<double(std::int64_t)>& element) {
  Tensor t = Tensor::empty(std::move(shape), DType::f64);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = element(i);
  return t.to(dtype);
}

// Bitwise comparison, reporting the first mismatch and how many there were.
inline void expect_elements(const Tensor& t,
                            const std::function<double(std::int64_t)>& expected,
                            const std::string& label) {
  std::int64_t mismatches = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (t.item(i) == expected(i)) continue;
    if (mismatches++ == 0)
      ADD_FAILURE() << label << ": element " << i << " is " << t.item(i) << ", expected "
                    << expected(i);
  }
  EXPECT_EQ(mismatches, 0) << label;
}

// One group under test and its members' world ranks (the pure layout's list, which
// test_parallel_context checks against MPI).
struct GroupCase {
  std::string label;
  Group group;
  std::vector<int> members;
};

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

// The four groups of every layout of layouts_for(world size), made for `device` (NCCL
// communicators for Device::cuda). Collective over `world`.
inline std::vector<GroupCase> layout_groups(const Group& world, Device device) {
  std::vector<GroupCase> cases;
  for (const ParallelSizes& sizes : layouts_for(world.size())) {
    const ParallelContext ctx = ParallelContext::create(world, sizes, device);
    const RankPlacement placement = place_rank(sizes, world.size(), world.rank());
    for (const Axis axis : kAxes)
      cases.push_back({to_string(sizes) + ", " + std::string(axis_name(axis)) + " group",
                       ctx.group(axis), placement.group(axis)});
  }
  return cases;
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
