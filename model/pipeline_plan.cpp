#include "model/pipeline_plan.hpp"

#include <algorithm>
#include <functional>

#include "runtime/error.hpp"

namespace ratrain {
namespace {

using Kind = PipelineAction::Kind;
using StageActions = std::function<std::vector<PipelineAction>(int stage)>;

// Whether `actions` runs `first` immediately followed by `second`.
bool back_to_back(const std::vector<PipelineAction>& actions, const PipelineAction& first,
                  const PipelineAction& second) {
  for (std::size_t i = 0; i + 1 < actions.size(); ++i)
    if (actions[i] == first && actions[i + 1] == second) return true;
  return false;
}

// The transfers of `stage` around the actions `actions_of(stage)`, given every stage's
// actions (the header's rule: a send is fused with the next action's receive when the
// neighbour runs the mirrored pair back to back).
std::vector<PipelineStep> plan_transfers(int stages, int stage, const StageActions& actions_of) {
  RT_REQUIRE(stages >= 1 && stage >= 0 && stage < stages, "pipeline plan: stage ", stage,
             " of ", stages, " is not a valid request");
  // The neighbours' actions; none where the stage has no neighbour.
  const std::vector<PipelineAction> mine = actions_of(stage);
  const std::vector<PipelineAction> previous =
      stage > 0 ? actions_of(stage - 1) : std::vector<PipelineAction>{};
  const std::vector<PipelineAction> next =
      stage + 1 < stages ? actions_of(stage + 1) : std::vector<PipelineAction>{};
  std::vector<PipelineStep> plan;
  bool input_came_with_previous_step = false;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const PipelineAction& action = mine[i];
    const bool forward = action.kind == Kind::forward;
    // A forward reads from the previous stage and writes to the next, a backward the
    // reverse; the first and the last stage have no neighbour on one side.
    const bool input_from_peer = forward ? stage > 0 : stage + 1 < stages;
    const bool output_to_peer = forward ? stage + 1 < stages : stage > 0;
    PipelineStep step{.action = action,
                      .receive_input = input_from_peer && !input_came_with_previous_step};
    input_came_with_previous_step = false;
    if (output_to_peer) {
      // The next action takes its input from the same neighbour when it is of the other
      // kind (F sends to s + 1, from where B receives; B sends to s - 1, F receives).
      const std::vector<PipelineAction>& peer = forward ? next : previous;
      const bool fused = i + 1 < mine.size() && mine[i + 1].kind != action.kind &&
                         back_to_back(peer, mine[i + 1], action);
      step.output =
          fused ? PipelineStep::Output::sent_with_next_input : PipelineStep::Output::sent;
      input_came_with_previous_step = fused;
    }
    plan.push_back(step);
  }
  return plan;
}

}  // namespace

std::vector<PipelineStep> training_plan(int stages, int stage, int micro_batches) {
  return plan_transfers(stages, stage,
                        [&](int s) { return one_f_one_b(stages, s, micro_batches); });
}

std::vector<PipelineStep> forward_plan(int stages, int stage, int micro_batches) {
  RT_REQUIRE(micro_batches >= 1, "pipeline plan: ", micro_batches, " micro-batches");
  return plan_transfers(stages, stage, [&](int) {
    std::vector<PipelineAction> forwards;
    for (int m = 0; m < micro_batches; ++m) forwards.push_back({Kind::forward, m});
    return forwards;
  });
}

int max_in_flight(const std::vector<PipelineStep>& plan) {
  int in_flight = 0, most = 0;
  for (const PipelineStep& step : plan) {
    in_flight += step.action.kind == Kind::forward ? 1 : -1;
    most = std::max(most, in_flight);
  }
  return most;
}

}  // namespace ratrain
