// Checkpoints of one process (io/checkpoint_*.hpp): a save read back into a fresh model
// and optimizer is bitwise the saved state; index.h5 reads back as the global tensors;
// meta.json records the progress; the folder commit, `latest` and keep-last-N; a
// flipped byte, a truncated or a missing shard are errors naming the file (and the
// dataset), and checkpoint.fallback passes over a bad checkpoint only when asked.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "io/checkpoint_format.hpp"
#include "io/checkpoint_resume.hpp"
#include "io/checkpoint_saver.hpp"
#include "io/h5.hpp"
#include "io_test_util.hpp"
#include "tests/unit/io/test_checkpoint_model.hpp"

namespace ratrain {
namespace {

namespace fs = std::filesystem;
using test::expect_contains;
using test::TempDir;

constexpr std::int64_t kSamples = 1000;  // samples per epoch recorded in the meta

class Checkpoint : public ::testing::Test {
 protected:
  // Saves `state` as the checkpoint of `iteration` under checkpoints_ and waits for it.
  void save(const test::TrainingState& state, std::int64_t iteration,
            std::vector<std::string> overrides = {}) {
    const RunConfig config = test::checkpoint_run_config(checkpoints_, std::move(overrides));
    CheckpointSaver saver(config, ctx_, Group::single(), kSamples, state.model->params(),
                          *state.optimizer);
    saver.save({.iteration = iteration, .data_cursor = 4 * iteration});
    saver.finish();
  }

  // Resumes a fresh state under the settings of `overrides`.
  std::optional<CheckpointMeta> resume(test::TrainingState& into,
                                       std::vector<std::string> overrides = {}) {
    const RunConfig config = test::checkpoint_run_config(checkpoints_, std::move(overrides));
    return resume_from_checkpoint(config.checkpoint, Group::single(), ctx_, into.model->params(),
                                  *into.optimizer);
  }

  std::string folder(std::int64_t iteration) const {
    return checkpoints_ + "/" + step_folder_name(iteration);
  }

  TempDir dir_;
  const std::string checkpoints_ = dir_.file("checkpoints");
  const ParallelContext ctx_ = ParallelContext::single_process();
};

// Flips one byte of dataset `dataset`'s stored elements in HDF5 file `path`.
void flip_byte_of(const std::string& path, const std::string& dataset) {
  haddr_t offset = HADDR_UNDEF;
  {
    const h5::File file(path, h5::Mode::read);
    const h5::Handle d(H5Dopen2(file.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
    ASSERT_GE(d.get(), 0);
    offset = H5Dget_offset(d.get());  // contiguous storage: one run of bytes
    ASSERT_NE(offset, HADDR_UNDEF);
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset) + 1);
  const char byte = static_cast<char>(f.get() ^ 0x10);
  f.seekp(static_cast<std::streamoff>(offset) + 1);
  f.put(byte);
  ASSERT_TRUE(f.good());
}

TEST_F(Checkpoint, ResumeRestoresTheStateBitwise) {
  const test::TrainingState saved = test::trained_state(ctx_, 3);
  save(saved, 3);
  test::TrainingState resumed = test::untrained_state(ctx_);
  const std::optional<CheckpointMeta> meta = resume(resumed);
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->iteration, 3);
  EXPECT_EQ(meta->data_cursor, 12);
  EXPECT_EQ(meta->data_samples, kSamples);
  EXPECT_EQ(meta->optimizer_steps, 6);  // joint: two steps per iteration
  test::expect_same_state(resumed, saved);

  std::ifstream latest(checkpoints_ + "/latest");
  std::string name;
  std::getline(latest, name);
  EXPECT_EQ(name, "step_3");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(folder(3)))
    files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"index.h5", "meta.json", "shard_0.h5"}));
  std::ifstream meta_text(folder(3) + "/meta.json");
  const std::string text((std::istreambuf_iterator<char>(meta_text)), {});
  expect_contains(text, {"\"hdf5\": \"" + h5::library_version() + "\"", "\"mpi\":",
                         "\"checksums\"", "\"config\"", "\"optim\""});
}

TEST_F(Checkpoint, IndexHoldsEveryTensorAsTheGlobalTensor) {
  const test::TrainingState saved = test::trained_state(ctx_, 2);
  save(saved, 2);
  const h5::File index(folder(2) + "/index.h5", h5::Mode::read);
  const ParamStore& params = saved.model->params();
  for (const ParamEntry& e : params.table().entries()) {
    test::expect_bitwise_equal(index.read("params/" + e.name, DType::f32), params.value(e.name),
                               "params/" + e.name);
    // One process: its shard is the whole flat buffer.
    test::expect_bitwise_equal(index.read("exp_avg/" + e.name, DType::f32),
                               saved.optimizer->first_moment().flat_view(e.offset, e.shape),
                               "exp_avg/" + e.name);
    test::expect_bitwise_equal(index.read("exp_avg_sq/" + e.name, DType::f32),
                               saved.optimizer->second_moment().flat_view(e.offset, e.shape),
                               "exp_avg_sq/" + e.name);
  }
  EXPECT_FALSE(index.exists("tied_copy"));  // one pipeline stage: no second copy
}

TEST_F(Checkpoint, FlippedByteIsAnErrorNamingFileAndDataset) {
  save(test::trained_state(ctx_, 1), 1);
  const std::string shard = folder(1) + "/shard_0.h5";
  const std::string dataset = "exp_avg/backbone.ln.weight/0";
  flip_byte_of(shard, dataset);
  test::TrainingState into = test::untrained_state(ctx_);
  expect_contains(error_of([&] { resume(into); }),
                  {"cannot resume from checkpoint '" + folder(1) + "'", shard, dataset, "corrupt",
                   "checkpoint.fallback=true"});
}

TEST_F(Checkpoint, MissingOrTruncatedShardOrBadMetaIsNamed) {
  save(test::trained_state(ctx_, 1), 1);
  const std::string shard = folder(1) + "/shard_0.h5";
  fs::resize_file(shard, fs::file_size(shard) / 2);
  test::TrainingState into = test::untrained_state(ctx_);
  expect_contains(error_of([&] { resume(into); }), {shard, "corrupt or truncated"});
  fs::remove(shard);
  expect_contains(error_of([&] { resume(into); }), {folder(1), "missing 'shard_0.h5'"});
  std::ofstream(folder(1) + "/meta.json") << "{\"format\": 1, \"iteration\": ";
  expect_contains(error_of([&] { resume(into); }), {folder(1) + "/meta.json", "malformed"});
}

TEST_F(Checkpoint, FallbackPassesOverABadCheckpointOnlyWhenAsked) {
  const test::TrainingState older = test::trained_state(ctx_, 1);
  save(older, 1);
  save(test::trained_state(ctx_, 2), 2);
  flip_byte_of(folder(2) + "/shard_0.h5", "params/embedding.wte.weight/0");
  test::TrainingState into = test::untrained_state(ctx_);
  expect_contains(error_of([&] { resume(into); }),
                  {folder(2), "params/embedding.wte.weight/0", "checkpoint.fallback=true"});
  const std::optional<CheckpointMeta> meta = resume(into, {"checkpoint.fallback=true"});
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->iteration, 1);
  test::expect_same_state(into, older);
}

TEST_F(Checkpoint, KeepsTheNewestAndPointsLatestAtTheLastSave) {
  const test::TrainingState state = test::trained_state(ctx_, 1);
  for (std::int64_t iteration : {1, 2, 3}) save(state, iteration, {"checkpoint.keep=2"});
  EXPECT_FALSE(fs::exists(folder(1)));
  EXPECT_TRUE(fs::exists(folder(2)));
  EXPECT_TRUE(fs::exists(folder(3)));
  // A run resumed from before step_3 saves step_2 again: latest follows it, and step_3,
  // though numbered higher, is the one beyond keep.
  save(state, 2, {"checkpoint.keep=1"});
  EXPECT_TRUE(fs::exists(folder(2)));
  EXPECT_FALSE(fs::exists(folder(3)));
  test::TrainingState into = test::untrained_state(ctx_);
  EXPECT_EQ(resume(into)->iteration, 2);
}

TEST_F(Checkpoint, PollCommitsOnceTheBackgroundWriteIsDone) {
  const test::TrainingState state = test::trained_state(ctx_, 1);
  const RunConfig config = test::checkpoint_run_config(checkpoints_);
  CheckpointSaver saver(config, ctx_, Group::single(), kSamples, state.model->params(),
                        *state.optimizer);
  saver.save({.iteration = 1, .data_cursor = 4});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(checkpoints_ + "/latest") && std::chrono::steady_clock::now() < deadline) {
    saver.poll();  // what the training loop does once per iteration
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(fs::exists(folder(1) + "/index.h5"));
  saver.finish();
}

TEST_F(Checkpoint, FreshStartWithoutACheckpointOrWithResumeNone) {
  test::TrainingState into = test::untrained_state(ctx_);
  EXPECT_FALSE(resume(into).has_value());  // auto, nothing saved yet
  save(test::trained_state(ctx_, 1), 1);
  EXPECT_FALSE(resume(into, {"checkpoint.resume=none"}).has_value());
  EXPECT_EQ(resume(into, {"checkpoint.resume=" + folder(1)})->iteration, 1);
  expect_contains(error_of([&] { resume(into, {"checkpoint.resume=" + dir_.file("nothing")}); }),
                  {"checkpoint.resume = '" + dir_.file("nothing") + "'", "neither"});
}

}  // namespace
}  // namespace ratrain
