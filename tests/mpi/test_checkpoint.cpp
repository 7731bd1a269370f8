// Checkpoints under parallel layouts (issue #5; np 2: tp2, sp2, pp2, dp2; np 4: tp2.sp2,
// pp2.dp2). After two joint iterations every rank saves its shard (CheckpointSaver,
// optimizer buckets small enough that a dp rank's shard is several ranges), then:
// - a fresh model and optimizer of the same layout resumed from the checkpoint hold
//   bitwise the saved parameters, moments and step count on every rank;
// - index.h5 holds every parameter and moment as the global tensor: within 1e-6 of the
//   same two iterations run by one process, and the parameters bitwise what the layout
//   gathers for a model file (model/gather_model.hpp);
// - a one-process model resumed from it on each rank (a different layout: every part
//   read back by hyperslab from the global tensors) holds bitwise the index's
//   parameters and moments.
// The same file is built a second time with RATRAIN_TEST_ON_GPU (tests/gpu/mpi): the
// states live on one GPU per rank (f32), the groups carry them through NCCL, and the
// saves copy them to pinned host memory asynchronously (io/checkpoint_writer.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "io/checkpoint_resume.hpp"
#include "io/checkpoint_saver.hpp"
#include "io/h5.hpp"
#include "model/gather_model.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/unit/io/test_checkpoint_model.hpp"

namespace ratrain {
namespace {

constexpr int kIterations = 2;
// f32 state after 4 AdamW steps at LR 1e-4 (test_checkpoint_model.hpp) under another
// summation order than one process's; on GPUs the attention's dq atomics add their own
// order, as in test_model_parallel.cpp.
constexpr double kTolerance = kTestDevice == Device::cuda ? 1e-5 : 1e-6;
const test::StateOptions kState{.device = kTestDevice};

std::vector<ParallelSizes> checkpoint_layouts(int world_size) {
  if (world_size == 2)
    return {{.tp = 2}, {.sp = 2}, {.pp = 2}, {.dp = 2}};
  return {{.tp = 2, .sp = 2}, {.pp = 2, .dp = 2}};
}

// `got` equals `want` within `tolerance` (0: bitwise).
void expect_close(const Tensor& got, const Tensor& want, double tolerance,
                  const std::string& what) {
  if (tolerance == 0) return test::expect_bitwise_equal(got, want, what);
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const Tensor a = got.to(Device::cpu), b = want.to(Device::cpu);
  double diff = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    diff = std::max(diff, std::abs(a.item(i) - b.item(i)));
  EXPECT_LE(diff, tolerance) << what;
}

// index.h5's global tensors against a one-process model's parameters and moments.
void expect_index_holds(const std::string& index_path, const test::TrainingState& one_process,
                        double tolerance) {
  const h5::File index(index_path, h5::Mode::read);
  const ParamStore& params = one_process.model->params();
  for (const ParamEntry& e : params.table().entries()) {
    expect_close(index.read("params/" + e.name, DType::f32), params.value(e.name), tolerance,
                 "params/" + e.name);
    // One process: its shard is the whole flat buffer.
    expect_close(index.read("exp_avg/" + e.name, DType::f32),
                 one_process.optimizer->first_moment().flat_view(e.offset, e.shape), tolerance,
                 "exp_avg/" + e.name);
    expect_close(index.read("exp_avg_sq/" + e.name, DType::f32),
                 one_process.optimizer->second_moment().flat_view(e.offset, e.shape), tolerance,
                 "exp_avg_sq/" + e.name);
  }
}

// index.h5's parameters against what the layout itself gathers for a model file
// (model/gather_model.hpp, an independent assembly): bitwise. Collective over tp, pp.
void expect_index_matches_gathered(const std::string& index_path, const ParamStore& store,
                                   const ParallelContext& ctx) {
  std::optional<h5::File> index;
  if (ctx.world_rank == 0) index.emplace(index_path, h5::Mode::read);
  gather_model_parameters(test::checkpoint_model_config(), store, ctx,
                          [&](const ParamEntry& e, const Tensor& global) {
                            test::expect_bitwise_equal(index->read("params/" + e.name, DType::f32),
                                                       global, "gathered " + e.name);
                          });
}

TEST(Checkpoint, SavedUnderALayoutResumesBitwiseAndShowsGlobalTensors) {
  if (const std::string why = missing_gpus(); !why.empty()) GTEST_SKIP() << why;
  const Group world = world_group();
  if (kTestDevice == Device::cuda) bind_local_device(world.split_by_node().rank());
  const test::TrainingState reference =
      test::trained_state(ParallelContext::single_process(), kIterations, kState);
  for (const ParallelSizes& sizes : checkpoint_layouts(world.size())) {
    SCOPED_TRACE(to_string(sizes));
    // Relative to the test's working folder, the same for every rank of the job.
    const std::string dir = "checkpoint_np" + std::to_string(world.size()) + "_" +
                            std::to_string(sizes.tp) + std::to_string(sizes.sp) +
                            std::to_string(sizes.pp) + std::to_string(sizes.dp);
    if (world.rank() == 0) std::filesystem::remove_all(dir);
    world.barrier();

    const ParallelContext ctx = ParallelContext::create(world, sizes, kTestDevice);
    const test::TrainingState saved = test::trained_state(ctx, kIterations, kState);
    const RunConfig config = test::checkpoint_run_config(dir);
    {
      CheckpointSaver saver(config, ctx, world, /*data_samples=*/100, saved.model->params(),
                            *saved.optimizer);
      saver.save({.iteration = kIterations, .data_cursor = 8});
      saver.finish();
    }
    world.barrier();  // rank 0's commit is done: `latest` exists for every rank

    test::TrainingState resumed = test::untrained_state(ctx, kState);
    const std::optional<CheckpointMeta> meta = resume_from_checkpoint(
        config.checkpoint, world, ctx, resumed.model->params(), *resumed.optimizer);
    ASSERT_TRUE(meta.has_value());
    EXPECT_EQ(meta->iteration, kIterations);
    EXPECT_EQ(meta->layout.world(), world.size());
    test::expect_same_state(resumed, saved);

    const std::string index = dir + "/step_" + std::to_string(kIterations) + "/index.h5";
    if (world.rank() == 0) expect_index_holds(index, reference, kTolerance);
    expect_index_matches_gathered(index, saved.model->params(), ctx);

    // Another layout: one process on each rank, reading its parts from the global tensors.
    const ParallelContext one = ParallelContext::single_process();
    test::TrainingState resharded = test::untrained_state(one, kState);
    ASSERT_TRUE(resume_from_checkpoint(config.checkpoint, Group::single(), one,
                                       resharded.model->params(), *resharded.optimizer)
                    .has_value());
    expect_index_holds(index, resharded, /*tolerance=*/0);
    EXPECT_EQ(resharded.optimizer->steps_taken(), saved.optimizer->steps_taken());

    world.barrier();
    if (world.rank() == 0) std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace ratrain
