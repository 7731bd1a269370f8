// Model-level properties that the golden fixtures do not pin down: recompute gives the
// same gradients, gradient accumulation over micro-batches equals one big batch, the
// report of final gradients, the one-process optimizer is plain AdamW bitwise, the
// joint schedule's order and LR, the LR schedule, and layout-independent init.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "model/flops.hpp"
#include "model/trainer.hpp"
#include "parallel/parallel_context.hpp"
#include "runtime/rng.hpp"

namespace ratrain {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 23;
  c.d_model = 16;
  c.num_heads = 2;
  c.num_layers = 2;
  c.sparse_rules = make_layer_rules(2, {3}, {1}, {2});
  return c;
}

// (B, T) random ids, labels with a few -100.
std::pair<Tensor, Tensor> random_batch(std::int64_t B, std::int64_t T, std::int64_t vocab) {
  Tensor ids = Tensor::empty({B, T}, DType::i32), labels = Tensor::empty({B, T}, DType::i32);
  const CounterRng rng(7, "test.batch");
  for (std::int64_t i = 0; i < B * T; ++i) {
    ids.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(2 * i, vocab));
    labels.data<std::int32_t>()[i] =
        i % 7 == 3 ? -100 : static_cast<std::int32_t>(rng.below(2 * i + 1, vocab));
  }
  return {ids, labels};
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.item(i) - b.item(i)));
  return m;
}

TEST(RatLM, RecomputeGivesIdenticalLossAndGradients) {
  const auto [ids, labels] = random_batch(2, 19, 23);
  for (AttentionMode mode : {AttentionMode::dense, AttentionMode::sparse}) {
    RatLM plain(small_config(), DType::f64), recompute(small_config(), DType::f64, Device::cpu, true);
    plain.params().initialize(3, 0.2);
    recompute.params().initialize(3, 0.2);
    const auto a = plain.forward_backward(ids, labels, mode, 0.1);
    const auto b = recompute.forward_backward(ids, labels, mode, 0.1);
    EXPECT_EQ(a.loss_sum, b.loss_sum);
    EXPECT_EQ(max_abs_diff(plain.params().grads(), recompute.params().grads()), 0.0);
  }
}

TEST(Trainer, MicroBatchesAccumulateToTheFullBatchGradient) {
  const auto [ids, labels] = random_batch(4, 11, 23);
  const ParallelContext ctx = ParallelContext::single_process();
  const LrSchedule lr{.base_lr = 1e-2, .eta_min = 1e-3, .warmup_iters = 1, .total_iters = 4};
  RatLM whole(small_config(), DType::f64), micro(small_config(), DType::f64);
  whole.params().initialize(5, 0.2);
  micro.params().initialize(5, 0.2);
  AdamW opt_whole(whole.params(), {}, ctx), opt_micro(micro.params(), {}, ctx);
  Trainer t_whole(whole, opt_whole, lr, Schedule::joint), t_micro(micro, opt_micro, lr, Schedule::joint, 1);
  for (int it = 0; it < 2; ++it) {
    const auto a = t_whole.step(ids, labels);
    const auto b = t_micro.step(ids, labels);
    ASSERT_EQ(a.steps.size(), 2u);
    for (std::size_t s = 0; s < 2; ++s) {
      EXPECT_NEAR(a.steps[s].loss, b.steps[s].loss, 1e-12);
      EXPECT_NEAR(a.steps[s].grad_norm, b.steps[s].grad_norm, 1e-12);
    }
  }
  EXPECT_LT(max_abs_diff(whole.params().values(), micro.params().values()), 1e-12);
}

TEST(Trainer, JointScheduleRunsSparseThenDenseAtOneLearningRate) {
  const auto [ids, labels] = random_batch(2, 9, 23);
  const ParallelContext ctx = ParallelContext::single_process();
  RatLM model(small_config(), DType::f64);
  model.params().initialize(1, 0.2);
  AdamW opt(model.params(), {}, ctx);
  const LrSchedule lr{.base_lr = 0.01, .eta_min = 1e-4, .warmup_iters = 1, .total_iters = 3};
  Trainer trainer(model, opt, lr, Schedule::joint);
  const double expected_lr[] = {0.01, 0.01, 0.00505};
  for (int it = 0; it < 3; ++it) {
    const auto r = trainer.step(ids, labels);
    EXPECT_EQ(r.iter, it);
    EXPECT_NEAR(r.lr, expected_lr[it], 1e-15);
    ASSERT_EQ(r.steps.size(), 2u);
    EXPECT_EQ(r.steps[0].mode, AttentionMode::sparse);
    EXPECT_EQ(r.steps[1].mode, AttentionMode::dense);
  }
  EXPECT_EQ(opt.steps_taken(), 6);
}

// The hook behind the overlapped data-parallel reduce-scatter (RatLM::GradientsFinal):
// during the last of the micro-batches, every gradient is reported once, in the order
// its last write happens (final norm, layers from the last, embedding), and nothing
// writes it after its report.
TEST(RatLM, ReportsEachGradientFinalOnceAfterItsLastWrite) {
  const auto [ids, labels] = random_batch(4, 11, 23);
  RatLM model(small_config(), DType::f64);
  model.params().initialize(5, 0.2);
  std::vector<std::pair<std::int64_t, std::int64_t>> reported;
  std::vector<Tensor> when_reported;  // the reported gradients at the time of the report
  model.forward_backward(ids, labels, AttentionMode::sparse, 0.1, 2,
                         [&](std::int64_t begin, std::int64_t end) {
                           reported.emplace_back(begin, end);
                           when_reported.push_back(
                               model.params().grads().flat_view(begin, {end - begin}).to(Device::cpu));
                         });
  const ParamTable& table = model.params().table();
  // From the start of parameter `first` to the end of parameter `last`.
  auto span = [&](const std::string& first, const std::string& last) {
    const ParamEntry& end = table.find(last);
    return std::make_pair(table.find(first).offset, end.offset + end.numel);
  };
  auto layer = [&](int l) {
    const std::string prefix = "backbone.layers." + std::to_string(l) + ".";
    return span(prefix + "seq_layer.input_norm.weight", prefix + "hidden_layer.fc2.weight");
  };
  const std::vector<std::pair<std::int64_t, std::int64_t>> expected = {
      span("backbone.ln.weight", "backbone.ln.weight"), layer(1), layer(0),
      span("embedding.wte.weight", "embedding.wte.weight")};
  EXPECT_EQ(reported, expected);
  EXPECT_EQ(expected.back().first, 0);
  EXPECT_EQ(expected.front().second, table.total_numel());
  for (std::size_t i = 0; i < reported.size(); ++i) {
    const auto [begin, end] = reported[i];
    EXPECT_EQ(max_abs_diff(when_reported[i], model.params().grads().flat_view(begin, {end - begin})),
              0.0)
        << "written after its report: [" << begin << ", " << end << ")";
  }
}

// With one process the ZeRO-1 optimizer is plain AdamW with clipping whatever the bucket
// size: bitwise the loop below, over micro-batches and both modes of the joint schedule.
TEST(AdamW, OneProcessEqualsAPlainAdamWLoopBitwise) {
  const auto [ids, labels] = random_batch(4, 11, 23);
  const LrSchedule lr{.base_lr = 1e-2, .eta_min = 1e-3, .warmup_iters = 1, .total_iters = 3};
  const AdamWConfig config{.clip_norm = 0.5};
  const double grad_scale = 1.0 / static_cast<double>(ops::count_valid_labels(labels));

  RatLM plain(small_config(), DType::f64);
  ParamStore& p = plain.params();
  p.initialize(5, 0.2);
  Tensor m = Tensor::zeros({p.padded_numel()}, DType::f64);
  Tensor v = Tensor::zeros({p.padded_numel()}, DType::f64);
  std::vector<double> norms;
  std::int64_t step = 0;
  for (int it = 0; it < 3; ++it) {
    for (const AttentionMode mode : schedule_modes(Schedule::joint)) {
      p.zero_grads();
      plain.forward_backward(ids, labels, mode, grad_scale, 4);
      double sum_of_squares = 0;
      for (const ParamEntry& e : p.table().entries())
        sum_of_squares += ops::sum_of_squares(p.grad(e.name));
      norms.push_back(std::sqrt(sum_of_squares));
      const double coef = config.clip_norm / (norms.back() + 1e-6);
      if (coef < 1.0) ops::scale_inplace(p.grads(), coef);
      ops::adamw_update(p.values(), p.grads(), m, v,
                        {.lr = lr.at(it), .beta1 = config.beta1, .beta2 = config.beta2,
                         .eps = config.eps, .weight_decay = config.weight_decay, .step = ++step});
    }
  }

  // 64 bytes: 8 elements, a bucket per parameter; then the default, one bucket.
  for (const std::int64_t bucket_bytes : {std::int64_t{64}, AdamWConfig{}.bucket_bytes}) {
    SCOPED_TRACE("bucket_bytes " + std::to_string(bucket_bytes));
    RatLM model(small_config(), DType::f64);
    model.params().initialize(5, 0.2);
    AdamWConfig bucketed = config;
    bucketed.bucket_bytes = bucket_bytes;
    const ParallelContext ctx = ParallelContext::single_process();
    AdamW optimizer(model.params(), bucketed, ctx);
    Trainer trainer(model, optimizer, lr, Schedule::joint, 1);  // 4 micro-batches
    std::vector<double> got;
    for (int it = 0; it < 3; ++it)
      for (const ModeStepResult& r : trainer.step(ids, labels).steps) got.push_back(r.grad_norm);
    EXPECT_EQ(got, norms);
    EXPECT_EQ(max_abs_diff(model.params().values(), p.values()), 0.0);
    EXPECT_EQ(max_abs_diff(optimizer.first_moment(), m), 0.0);
    EXPECT_EQ(max_abs_diff(optimizer.second_moment(), v), 0.0);
    EXPECT_EQ(optimizer.shard_begin(), 0);
  }
}

TEST(LrSchedule, WarmupThenCosineToTheFloor) {
  const LrSchedule s{.base_lr = 1.0, .eta_min = 0.1, .warmup_iters = 4, .total_iters = 14};
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_NEAR(s.at(9), 0.55, 1e-15);  // half way: (1 + 0.1) / 2
  EXPECT_NEAR(s.at(14), 0.1, 1e-15);
  EXPECT_NEAR(s.at(100), 0.1, 1e-15);  // stays at the floor
}

TEST(ParamStore, InitDependsOnlyOnSeedNameAndIndex) {
  RatLM a(small_config(), DType::f64), b(small_config(), DType::f32);
  a.params().initialize(42, 0.02);
  b.params().initialize(42, 0.02);
  const CounterRng rng(42, "backbone.layers.1.hidden_layer.fc2.weight");
  const Tensor w = a.params().value("backbone.layers.1.hidden_layer.fc2.weight");
  for (std::int64_t i : {0, 5, 511})
    EXPECT_DOUBLE_EQ(w.item(i), 0.02 * rng.normal(static_cast<std::uint64_t>(i)));
  EXPECT_EQ(a.params().value("backbone.ln.weight").item(3), 1.0);
  EXPECT_LT(max_abs_diff(a.params().values(), b.params().values()), 1e-8);  // f32 rounding only
}

TEST(ModelConfig, ParameterCountMatchesThePaperSizes) {
  ModelConfig c;
  c.vocab_size = 32000;
  c.d_model = 2048;
  c.num_heads = 16;
  c.num_layers = 24;
  c.sparse_rules = make_layer_rules(24, {64}, {0}, {0});
  EXPECT_NEAR(static_cast<double>(c.num_parameters()), 1.47e9, 0.01e9);
  c.d_model = 4096;
  c.num_heads = 32;
  c.num_layers = 32;
  c.sparse_rules = make_layer_rules(32, {64}, {0}, {0});
  EXPECT_NEAR(static_cast<double>(c.num_parameters()), 7.65e9, 0.01e9);
}

TEST(ModelConfig, PerLayerListsMustMatchTheLayerCount) {
  EXPECT_THROW(make_layer_rules(3, {1, 8}, {0}, {0}), Error);
  const auto rules = make_layer_rules(2, {1, 8}, {0, 4}, {0, 2});
  EXPECT_EQ(rules[1], (Sparsity{8, 4, 2}));
}

TEST(Flops, DilatedAttentionCountsTheVisibleKeys) {
  EXPECT_DOUBLE_EQ(mean_visible_keys(Sparsity::dense(), 8), 4.5);
  // D = 4, W = 0, P = 0, T = 8: query i sees itself and the chunk ends 3 (i > 3), 7 (never
  // < i in range): counts 1,1,1,1,2,2,2,2 -> mean 1.5.
  EXPECT_DOUBLE_EQ(mean_visible_keys(Sparsity{4, 0, 0}, 8), 1.5);
}

}  // namespace
}  // namespace ratrain
