// Asynchronous checkpoints of GPU training state (io/checkpoint_writer.hpp): the copy of
// the f32 master values and both moments to page-locked host memory runs beside the
// next training step, whose optimizer update waits for it on the device. The checkpoint
// must hold its own iteration's state bitwise although training went on before the file
// was written, and a resume on the GPU must restore exactly that state. Skipped without
// a GPU.
#include <gtest/gtest.h>

#include "io/checkpoint_resume.hpp"
#include "io/checkpoint_saver.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/io/io_test_util.hpp"
#include "tests/unit/io/test_checkpoint_model.hpp"

namespace ratrain {
namespace {

using CheckpointCuda = gpu_test::GpuTest;

// About 9 M parameters (a 32000-token embedding): the state (f32 master and moments,
// ~100 MiB) takes milliseconds to copy over PCIe, longer than the next step's forward
// and backward passes on a 4 x 16 batch, so an update that did not wait for the copy
// would overwrite values the copy has not read yet.
test::StateOptions gpu_options() {
  return {.model = {.vocab_size = 32000, .d_model = 256, .num_heads = 2, .num_layers = 2,
                    .sparse_rules = make_layer_rules(2, {4}, {2}, {3})},
          .device = Device::cuda,
          .dtype = DType::bf16};
}

TEST_F(CheckpointCuda, SaveHoldsItsIterationWhileTrainingGoesOn) {
  const ParallelContext ctx = ParallelContext::single_process();
  const test::TempDir dir;
  const RunConfig config = test::checkpoint_run_config(dir.file("checkpoints"));
  test::TrainingState training = test::trained_state(ctx, 2, gpu_options());
  // The state of iteration 2, kept aside by a second identical run.
  const test::TrainingState at_save = test::trained_state(ctx, 2, gpu_options());
  {
    CheckpointSaver saver(config, ctx, Group::single(), /*data_samples=*/1000,
                          training.model->params(), *training.optimizer);
    saver.save({.iteration = 2, .data_cursor = 8});
    test::train_state(training, 2, 3);  // the copy runs beside these steps
    saver.finish();
  }
  test::TrainingState resumed = test::untrained_state(ctx, gpu_options());
  const std::optional<CheckpointMeta> meta = resume_from_checkpoint(
      config.checkpoint, Group::single(), ctx, resumed.model->params(), *resumed.optimizer);
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->iteration, 2);
  test::expect_same_state(resumed, at_save);
}

}  // namespace
}  // namespace ratrain
