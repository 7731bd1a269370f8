// The groups of a rank in the DP x PP x SP x TP layout (DESIGN.md "Parallel layout"),
// passed explicitly as a value to whatever needs a collective (STYLE.md item 5).
// Single process for now: every group is of size one.
#pragma once

#include "parallel/group.hpp"

namespace ratrain {

struct ParallelContext {
  Group tp = Group::single();
  Group sp = Group::single();
  Group pp = Group::single();
  Group dp = Group::single();
  int world_rank = 0;
  int world_size = 1;

  static ParallelContext single_process() { return {}; }
};

}  // namespace ratrain
