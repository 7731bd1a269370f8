// ParallelContext::create: the pure layout of rank_layout.hpp turned into groups.
#include "parallel/parallel_context.hpp"

#include "runtime/device_memory.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

// This rank's group along `axis`. Collective over `world`.
Group make_axis_group(const Group& world, const RankPlacement& placement, Axis axis) {
  // The lowest world rank of a group names it uniquely; ordering by coordinate makes
  // the group rank equal the coordinate.
  const std::vector<int>& members = placement.group(axis);
  const int coord = placement.coords.of(axis);
  Group group = world.split(members.front(), coord);
  RT_ASSERT(group.size() == static_cast<int>(members.size()) && group.rank() == coord);
  return group;
}

}  // namespace

ParallelContext ParallelContext::create(const Group& world, const ParallelSizes& sizes,
                                        Device device) {
  const RankPlacement placement = place_rank(sizes, world.size(), world.rank());
  ParallelContext ctx;
  ctx.tp = make_axis_group(world, placement, Axis::tp);
  ctx.sp = make_axis_group(world, placement, Axis::sp);
  ctx.pp = make_axis_group(world, placement, Axis::pp);
  ctx.dp = make_axis_group(world, placement, Axis::dp);
  ctx.sizes = sizes;
  ctx.coords = placement.coords;
  ctx.world_rank = world.rank();
  ctx.world_size = world.size();
  ctx.local_rank = world.split_by_node().rank();
  set_log_rank(ctx.world_rank, ctx.world_size);
  if (device == Device::cuda) {
    bind_local_device(ctx.local_rank);
    for (Group* group : {&ctx.tp, &ctx.sp, &ctx.pp, &ctx.dp}) group->enable_device_tensors();
  }
  return ctx;
}

}  // namespace ratrain
