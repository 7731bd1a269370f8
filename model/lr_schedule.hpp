// Learning rate per iteration (one iteration = one global batch; under joint training
// both optimizer steps of a batch use the same rate): linear warmup
// lr = (it + 1) / warmup * base for it < warmup, then cosine from base to eta_min over
// the remaining iterations (RATPLUS.md "Optimizer").
// Worked example (the joint_train fixture): base 0.01, warmup 1, total 3, eta_min 1e-4:
// it 0 -> 0.01, it 1 -> 0.01 (cosine at 0), it 2 -> 1e-4 + 0.0099 * (1 + cos(pi/2)) / 2
// = 0.00505.
#pragma once

#include <cstdint>

namespace ratrain {

struct LrSchedule {
  double base_lr = 0;
  double eta_min = 0;
  std::int64_t warmup_iters = 0;
  std::int64_t total_iters = 1;

  double at(std::int64_t iter) const;
  // Throws ratrain::Error naming the offending field.
  void validate() const;
};

}  // namespace ratrain
