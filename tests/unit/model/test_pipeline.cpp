// Pipeline parallelism without MPI: which layers and parameters a stage holds, and the
// transfer plan of model/pipeline_plan.hpp, whose deadlock freedom rests on both ends of
// every link running the same events in the same order (checked here exhaustively for
// small pipelines). tests/mpi/test_model_parallel.cpp trains under the pp layouts.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "model/pipeline_plan.hpp"
#include "model/pipeline_stage.hpp"
#include "model/rat_lm.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using Kind = PipelineAction::Kind;
using Output = PipelineStep::Output;

TEST(PipelineStage, ContiguousLayerRangesWithTheEndsOnTheOuterStages) {
  // The header's worked example: 8 layers over 4 stages.
  const std::int64_t first[] = {0, 2, 4, 6};
  for (int s = 0; s < 4; ++s) {
    const PipelineStage stage = pipeline_stage(8, 4, s);
    EXPECT_EQ(stage.first_layer, first[s]);
    EXPECT_EQ(stage.end_layer, first[s] + 2);
    EXPECT_EQ(stage.is_first(), s == 0);
    EXPECT_EQ(stage.is_last(), s == 3);
  }
  const PipelineStage whole = pipeline_stage(5, 1, 0);
  EXPECT_TRUE(whole.is_first() && whole.is_last());
  EXPECT_EQ(whole.num_layers(), 5);
}

TEST(PipelineStage, LayersMustSplitEvenlyNamingTheConfigKeys) {
  EXPECT_NE(error_of([] { pipeline_stage(6, 4, 0); })
                .find("model.num_layers (6) must be divisible by parallel.pp (4)"),
            std::string::npos);
}

ModelConfig four_layers() {
  return {.vocab_size = 11, .d_model = 8, .num_heads = 2, .num_layers = 4,
          .sparse_rules = make_layer_rules(4, {2}, {0}, {0})};
}

std::vector<std::string> names_of(const ParamTable& table) {
  std::vector<std::string> names;
  for (const ParamEntry& e : table.entries()) names.push_back(e.name);
  return names;
}

// The stages' tables, the tied head left out of the last, are the one-process table in
// order; the embedding is a copy on both ends.
TEST(PipelineStage, StageTablesPartitionTheModelAndCopyTheTiedEmbedding) {
  const ModelConfig c = four_layers();
  const ParamTable whole = RatLM::make_param_table(c, Group::single(), pipeline_stage(4, 1, 0));
  for (const ParamEntry& e : whole.entries()) EXPECT_EQ(e.copies, StageCopies::one) << e.name;
  std::vector<std::string> joined;
  for (int s = 0; s < 2; ++s) {
    const ParamTable table = RatLM::make_param_table(c, Group::single(), pipeline_stage(4, 2, s));
    for (const ParamEntry& e : table.entries()) {
      const bool tied = e.name == "embedding.wte.weight";
      EXPECT_EQ(e.copies, tied ? StageCopies::first_and_last : StageCopies::one) << e.name;
      if (!(tied && s == 1)) joined.push_back(e.name);
    }
    EXPECT_TRUE(table.contains("embedding.wte.weight"));
    EXPECT_EQ(table.contains("backbone.ln.weight"), s == 1);
    EXPECT_EQ(table.contains("backbone.layers.2.seq_layer.in_proj.weight"), s == 1);
  }
  EXPECT_EQ(joined, names_of(whole));
  const ParamTable middle = RatLM::make_param_table(c, Group::single(), pipeline_stage(4, 4, 1));
  EXPECT_EQ(names_of(middle).front(), "backbone.layers.1.seq_layer.input_norm.weight");
  EXPECT_FALSE(middle.contains("embedding.wte.weight"));
}

// "<a0 F0 >a0" etc.: a step as the header's worked example writes it.
std::string to_string(const std::vector<PipelineStep>& plan) {
  std::string out;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const PipelineStep& step = plan[i];
    const bool forward = step.action.kind == Kind::forward;
    const std::string m = std::to_string(step.action.micro_batch);
    if (!out.empty()) out += "  ";
    if (step.receive_input) out += (forward ? "<a" : "<g") + m + " ";
    out += (forward ? "F" : "B") + m;
    if (step.output != Output::kept) out += (forward ? " >a" : " >g") + m;
    if (step.output == Output::sent_with_next_input)
      out += (forward ? "<g" : "<a") + std::to_string(plan.at(i + 1).action.micro_batch);
  }
  return out;
}

TEST(PipelinePlan, TwoStagesThreeMicroBatches) {
  EXPECT_EQ(to_string(training_plan(2, 0, 3)), "F0 >a0  F1 >a1<g0  B0  F2 >a2<g1  B1  <g2 B2");
  EXPECT_EQ(to_string(training_plan(2, 1, 3)), "<a0 F0  B0 >g0<a1  F1  B1 >g1<a2  F2  B2 >g2");
}

TEST(PipelinePlan, OneStageTransfersNothing) {
  EXPECT_EQ(to_string(training_plan(1, 0, 3)), "F0  B0  F1  B1  F2  B2");
  EXPECT_EQ(to_string(forward_plan(1, 0, 2)), "F0  F1");
}

TEST(PipelinePlan, FewerMicroBatchesThanStagesSendAndReceivePlainly) {
  EXPECT_EQ(to_string(training_plan(4, 1, 2)), "<a0 F0 >a0  <a1 F1 >a1  <g0 B0 >g0  <g1 B1 >g1");
  EXPECT_EQ(to_string(forward_plan(3, 1, 2)), "<a0 F0 >a0  <a1 F1 >a1");
}

// The events on link (s, s + 1) as stage s (`upper`: it sends activations) or stage
// s + 1 (it sends gradients) sees them: "a3" activation 3, "g2" gradient 2, "a3+g2"
// both in one send_recv.
std::vector<std::string> link_events(const std::vector<PipelineStep>& plan, bool upper) {
  std::vector<std::string> events;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const PipelineStep& step = plan[i];
    const bool forward = step.action.kind == Kind::forward;
    const std::string m = std::to_string(step.action.micro_batch);
    // The upper stage sends on this link in forward and receives in backward; the
    // lower stage the reverse.
    if (step.receive_input && forward != upper) events.push_back((forward ? "a" : "g") + m);
    if (step.output == Output::kept || forward != upper) continue;
    if (step.output == Output::sent) {
      events.push_back((forward ? "a" : "g") + m);
    } else {
      const std::string n = std::to_string(plan.at(i + 1).action.micro_batch);
      events.push_back(forward ? "a" + m + "+g" + n : "a" + n + "+g" + m);
    }
  }
  return events;
}

TEST(PipelinePlan, BothEndsOfEveryLinkRunTheSameEventsInOrder) {
  for (int stages = 2; stages <= 8; ++stages)
    for (int m = 1; m <= 12; ++m)
      for (int s = 0; s + 1 < stages; ++s) {
        const auto upper = link_events(training_plan(stages, s, m), true);
        const auto lower = link_events(training_plan(stages, s + 1, m), false);
        EXPECT_EQ(upper, lower) << stages << " stages, " << m << " micro-batches, link " << s;
        // Each of the m activations and m gradients crosses once, alone or in a pair.
        const auto pairs = std::count_if(upper.begin(), upper.end(), [](const std::string& e) {
          return e.find('+') != std::string::npos;
        });
        EXPECT_EQ(static_cast<std::int64_t>(upper.size()) + pairs, 2 * m);
        EXPECT_EQ(link_events(forward_plan(stages, s, m), true),
                  link_events(forward_plan(stages, s + 1, m), false));
      }
}

// Inputs arrive from a neighbour exactly where there is one: never on the first
// stage's forwards or the last stage's backwards, always elsewhere (by a receive or
// with the previous step's send_recv).
TEST(PipelinePlan, EveryInputFromANeighbourArrivesOnce) {
  for (int stages = 1; stages <= 6; ++stages)
    for (int m = 1; m <= 9; ++m)
      for (int s = 0; s < stages; ++s) {
        const auto plan = training_plan(stages, s, m);
        for (std::size_t i = 0; i < plan.size(); ++i) {
          const bool forward = plan[i].action.kind == Kind::forward;
          const bool from_peer = forward ? s > 0 : s + 1 < stages;
          const bool came_before = i > 0 && plan[i - 1].output == Output::sent_with_next_input;
          EXPECT_EQ(from_peer, plan[i].receive_input || came_before) << to_string(plan);
          EXPECT_FALSE(plan[i].receive_input && came_before) << to_string(plan);
        }
      }
}

TEST(PipelinePlan, StageKeepsAtMostStagesMinusItsIndexMicroBatches) {
  EXPECT_EQ(max_in_flight(training_plan(4, 0, 6)), 4);
  EXPECT_EQ(max_in_flight(training_plan(4, 3, 6)), 1);
  EXPECT_EQ(max_in_flight(training_plan(4, 0, 2)), 2);
  EXPECT_EQ(max_in_flight(training_plan(1, 0, 5)), 1);
  EXPECT_EQ(max_in_flight(forward_plan(3, 1, 2)), 2);
}

}  // namespace
}  // namespace ratrain
