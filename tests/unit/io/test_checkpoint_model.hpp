// Shared by the checkpoint tests (unit and MPI): a tiny model trained for a few
// iterations, so that parameters, both moments and the step count hold values no
// fresh model has, and a bitwise comparison of two such training states.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "io/run_config.hpp"
#include "model/trainer.hpp"
#include "runtime/rng.hpp"

namespace ratrain::test {

// Vocabulary 37: no TP size divides it (uneven embedding parts). Four layers: pp 2 and 4.
inline ModelConfig checkpoint_model_config() {
  return {.vocab_size = 37, .d_model = 16, .num_heads = 4, .num_layers = 4,
          .sparse_rules = make_layer_rules(4, {4}, {2}, {3})};
}

struct TrainingState {
  std::unique_ptr<RatLM> model;
  std::unique_ptr<AdamW> optimizer;
};

// Where and how a test state lives: the CPU in f32 by default; a GPU test trains a
// larger model in bf16 (f32 master copy) so that copying its state takes a while.
struct StateOptions {
  ModelConfig model = checkpoint_model_config();
  Device device = Device::cpu;
  DType dtype = DType::f32;
};

// `iterations` more joint iterations of `s` on fixed batches (keyed by iteration number
// from `first`).
inline void train_state(TrainingState& s, int first, int iterations) {
  // A small LR keeps layouts within 1e-6 of one process after a few steps: AdamW's
  // update is about lr per step whatever the gradient, so rounding differences between
  // summation orders move parameters by at most a few lr * 2^-23.
  const LrSchedule lr{.base_lr = 1e-4, .eta_min = 1e-5, .warmup_iters = 1, .total_iters = 8};
  Trainer trainer(*s.model, *s.optimizer, lr, Schedule::joint);
  constexpr std::int64_t kRows = 4, kSeq = 16;
  const auto vocab = static_cast<std::uint64_t>(s.model->config().vocab_size);
  for (int it = first; it < first + iterations; ++it) {
    Tensor ids = Tensor::empty({kRows, kSeq}, DType::i32);
    Tensor labels = Tensor::empty({kRows, kSeq}, DType::i32);
    const CounterRng rng(static_cast<std::uint64_t>(it), "test.checkpoint");
    for (std::int64_t i = 0; i < kRows * kSeq; ++i) {
      ids.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(2 * i, vocab));
      labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(2 * i + 1, vocab));
    }
    trainer.step(ids, labels);
  }
}

// A model of options.model under `ctx` (which must outlive it), freshly initialised,
// with an optimizer of small buckets (several shard ranges per rank under dp > 1), after
// `iterations` joint iterations.
inline TrainingState trained_state(const ParallelContext& ctx, int iterations,
                                   const StateOptions& options = {}) {
  TrainingState s;
  s.model = std::make_unique<RatLM>(options.model, options.dtype, options.device, false, ctx);
  s.model->params().initialize(9, 0.3);
  s.optimizer = std::make_unique<AdamW>(
      s.model->params(), AdamWConfig{.eps = 1e-6, .bucket_bytes = 512}, ctx);
  train_state(s, 0, iterations);
  return s;
}

// A fresh state of the same shape (what a resume loads into).
inline TrainingState untrained_state(const ParallelContext& ctx, const StateOptions& options = {}) {
  return trained_state(ctx, 0, options);
}

inline void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  const Tensor ha = a.to(Device::cpu), hb = b.to(Device::cpu);
  EXPECT_EQ(std::memcmp(ha.raw(), hb.raw(), ha.nbytes()), 0) << what << " differs";
}

// Parameters (the whole flat buffer, padding included; and the f32 master copy where the
// values are bf16), moments and step count.
inline void expect_same_state(const TrainingState& got, const TrainingState& want) {
  expect_bitwise_equal(got.model->params().values(), want.model->params().values(), "parameters");
  expect_bitwise_equal(got.model->params().optimizer_values(),
                       want.model->params().optimizer_values(), "optimizer values");
  expect_bitwise_equal(got.optimizer->first_moment(), want.optimizer->first_moment(), "exp_avg");
  expect_bitwise_equal(got.optimizer->second_moment(), want.optimizer->second_moment(),
                       "exp_avg_sq");
  EXPECT_EQ(got.optimizer->steps_taken(), want.optimizer->steps_taken());
}

// The run configuration of a test run that checkpoints into `dir`.
inline RunConfig checkpoint_run_config(const std::string& dir,
                                       std::vector<std::string> overrides = {}) {
  overrides.insert(overrides.begin(), {"checkpoint.dir=" + dir, "checkpoint.every=1"});
  return load_run_config("", overrides);
}

}  // namespace ratrain::test
