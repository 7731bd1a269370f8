// The shipped configs (configs/*.ini) load, validate and describe the sizes of
// RATPLUS.md "Sizes"; a layout that needs more ranks than one process fails to lay out.
#include <gtest/gtest.h>

#include "io/run_config.hpp"
#include "parallel/parallel_context.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

std::string config_path(const std::string& name) {
  return std::string(RATRAIN_SOURCE_DIR) + "/configs/" + name + ".ini";
}

TEST(RunConfigs, PaperSizesMatchRatplusTable) {
  const struct {
    const char* name;
    double params;
    std::int64_t batch;
    double lr;
  } sizes[] = {{"1.5b", 1.47e9, 512, 8e-4}, {"2.6b", 2.65e9, 640, 7e-4}, {"7.6b", 7.65e9, 768, 6e-4}};
  for (const auto& s : sizes) {
    const RunConfig c = load_run_config(config_path(s.name), {});
    validate_run_config(c);
    EXPECT_NEAR(static_cast<double>(c.model.num_parameters()), s.params, 0.01e9) << s.name;
    EXPECT_EQ(c.model.head_dim(), 128) << s.name;
    EXPECT_EQ(c.train.seq_len, 4096) << s.name;
    EXPECT_EQ(c.train.batch_size, s.batch) << s.name;
    EXPECT_DOUBLE_EQ(c.lr.base_lr, s.lr) << s.name;
    EXPECT_EQ(c.model.sparse_rules.front(), (Sparsity{64, 0, 0})) << s.name;
    EXPECT_EQ(c.train.schedule, Schedule::joint) << s.name;
  }
}

TEST(RunConfigs, TinyDemoConfigTakesTheVocabularyFromTheData) {
  RunConfig c = load_run_config(config_path("tiny"), {"model.num_layers=2"});
  EXPECT_EQ(c.model.vocab_size, 0);
  EXPECT_EQ(c.model.num_layers, 2);  // the override wins over the file
  c.model.vocab_size = 259;
  validate_run_config(c);
  EXPECT_EQ(c.lr.warmup_iters, 20);  // ceil(0.05 * 400)
}

TEST(RunConfigs, PerLayerRulesNeedOneValueOrOnePerLayer) {
  const std::string message = error_of(
      [] { load_run_config("", {"model.num_layers=3", "model.dilation=1,8"}); });
  EXPECT_NE(message.find("dilation lists 2 values"), std::string::npos) << message;
}

TEST(RunConfigs, ParallelSizesAreRankCounts) {
  const std::string message = error_of([] { load_run_config("", {"parallel.sp=0"}); });
  EXPECT_NE(message.find("parallel.sp must be in [1, 32768] (got 0)"), std::string::npos)
      << message;
}

// parallel.sp_split: zigzag by default, contiguous on request, anything else refused;
// zigzag needs 2 sp | train.seq_len, contiguous only sp | train.seq_len.
TEST(RunConfigs, SequenceSplitIsZigzagOrContiguous) {
  const std::vector<std::string> sp3 = {"model.vocab_size=259", "parallel.sp=3",
                                        "train.seq_len=9"};
  const RunConfig zigzag = load_run_config("", sp3);
  EXPECT_EQ(zigzag.parallel.sp_split, SequenceSplit::zigzag);
  const std::string odd = error_of([&] { validate_run_config(zigzag); });
  EXPECT_NE(odd.find("train.seq_len (9) must be divisible by 2 * parallel.sp (6) for the zigzag "
                     "split (parallel.sp_split = zigzag"),
            std::string::npos)
      << odd;
  std::vector<std::string> contiguous = sp3;
  contiguous.push_back("parallel.sp_split=contiguous");
  const RunConfig c = load_run_config("", contiguous);
  EXPECT_EQ(c.parallel.sp_split, SequenceSplit::contiguous);
  EXPECT_NO_THROW(validate_run_config(c));
  const std::string bad = error_of([] { load_run_config("", {"parallel.sp_split=ring"}); });
  EXPECT_NE(bad.find("parallel.sp_split: unknown sequence split 'ring'; valid: contiguous, "
                     "zigzag"),
            std::string::npos)
      << bad;
}

// The hang watchdog is on by default (launch/step_watchdog.hpp); 0 turns it off.
TEST(RunConfigs, HangTimeoutDefaultsToHalfAnHourAndIsNotNegative) {
  EXPECT_EQ(load_run_config("", {}).train.hang_timeout_s, 1800);
  EXPECT_EQ(load_run_config("", {"train.hang_timeout_s=0"}).train.hang_timeout_s, 0);
  const std::string message = error_of([] { load_run_config("", {"train.hang_timeout_s=-5"}); });
  EXPECT_NE(message.find("train.hang_timeout_s must be in [0, 31536000] seconds (0 = no hang "
                         "watchdog; got -5)"), std::string::npos) << message;
}

// Pipeline stages hold equal layer ranges: any stage count that divides the layers.
TEST(RunConfigs, PipelineStagesMustDivideTheLayers) {
  const std::vector<std::string> four_layers = {"model.vocab_size=259", "model.num_layers=4"};
  auto with = [&](const std::string& pp) {
    std::vector<std::string> overrides = four_layers;
    overrides.push_back(pp);
    return load_run_config("", overrides);
  };
  EXPECT_NO_THROW(validate_run_config(with("parallel.pp=2")));
  const RunConfig c = with("parallel.pp=3");
  const std::string message = error_of([&] { validate_run_config(c); });
  EXPECT_NE(message.find("model.num_layers (4) must be divisible by parallel.pp (3)"),
            std::string::npos)
      << message;
}

// A multi-rank layout is a valid config; started as one process, laying the world out
// by it fails with the rank count it needs.
TEST(RunConfigs, MultiRankLayoutsNeedThatManyRanks) {
  RunConfig c = load_run_config("", {"model.vocab_size=259", "parallel.tp=2", "parallel.sp=2"});
  validate_run_config(c);
  const std::string message =
      error_of([&] { ParallelContext::create(Group::single(), c.parallel); });
  EXPECT_NE(message.find("needs tp*sp*pp*dp = 4 ranks but the world has 1"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace ratrain
