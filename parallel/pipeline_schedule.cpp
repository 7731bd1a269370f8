#include "parallel/pipeline_schedule.hpp"

#include <algorithm>

#include "runtime/error.hpp"

namespace ratrain {

std::vector<PipelineAction> one_f_one_b(int stages, int stage, int micro_batches) {
  RT_REQUIRE(stages >= 1 && stage >= 0 && stage < stages && micro_batches >= 1,
             "1F1B schedule: stage ", stage, " of ", stages, " with ", micro_batches,
             " micro-batches is not a valid request");
  using Kind = PipelineAction::Kind;
  std::vector<PipelineAction> actions;
  const int warmup = std::min(stages - 1 - stage, micro_batches);
  int forwards = 0, backwards = 0;
  while (forwards < warmup) actions.push_back({Kind::forward, forwards++});
  while (forwards < micro_batches) {
    actions.push_back({Kind::forward, forwards++});
    actions.push_back({Kind::backward, backwards++});
  }
  while (backwards < micro_batches) actions.push_back({Kind::backward, backwards++});
  return actions;
}

std::string to_string(const std::vector<PipelineAction>& actions) {
  std::string out;
  for (const PipelineAction& a : actions) {
    if (!out.empty()) out += ' ';
    out += a.kind == PipelineAction::Kind::forward ? 'F' : 'B';
    out += std::to_string(a.micro_batch);
  }
  return out;
}

}  // namespace ratrain
