#include "model/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "runtime/error.hpp"

namespace ratrain {

double LrSchedule::at(std::int64_t iter) const {
  if (iter < warmup_iters)
    return static_cast<double>(iter + 1) / static_cast<double>(warmup_iters) * base_lr;
  const std::int64_t span = std::max<std::int64_t>(1, total_iters - warmup_iters);
  const double progress = std::min(1.0, static_cast<double>(iter - warmup_iters) / span);
  return eta_min + (base_lr - eta_min) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
}

void LrSchedule::validate() const {
  RT_REQUIRE(base_lr > 0, "optim.lr must be positive (got ", base_lr, ")");
  RT_REQUIRE(eta_min >= 0 && eta_min <= base_lr, "optim.min_lr must be in [0, optim.lr] (got ",
             eta_min, ")");
  RT_REQUIRE(warmup_iters >= 0 && total_iters > 0, "warmup and total iterations must be >= 0 "
             "and > 0 (got ", warmup_iters, ", ", total_iters, ")");
}

}  // namespace ratrain
