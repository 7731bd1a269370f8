// Layout independence of training (issue #4 acceptance, DESIGN.md principle 4): under
// every parallel layout that fits the world (sequence parallelism split zigzag or
// contiguous, parallel/sequence_split.hpp), three iterations of each schedule give the
// losses, gradient norms and final parameters of the single-process run within 1e-5
// relative in f32, and within 1e-12 in f64 (so any difference is rounding, not maths);
// so do the parameters gathered for a model file (every stage's, every TP part).
//
// Every rank also trains the single-process reference itself (the model is tiny), so
// the comparison needs no communication beyond the run under test. The reference runs
// the same micro-batches (train.micro_batch rows at a time). The shapes are chosen so
// that the layouts meet their hard cases: a vocabulary (37) that no TP size divides;
// chunks of 12, 6 or 3 positions that the local window (5) and the prefix (14) cross; a
// sparse rule per layer; pipelines with more micro-batches than stages (pp2, M = 4), as
// many (pp4), fewer (pp2.dp2, M = 1), and with activation recompute. Every layout with
// data parallelism runs twice: with the default gradient bucket (the whole model in one)
// and with buckets of 2 KiB (30 to 60 buckets, many reduce-scatters in flight at once,
// over micro-batches of one row).
//
// A second test shows the overlap itself: the reduce-scatter of the last layers' buckets
// has started by the time the backward pass reaches the first layer.
//
// The same file is built a second time with RATRAIN_TEST_ON_GPU (tests/gpu/mpi): every
// rank then trains on its own GPU, the groups carry device tensors through NCCL, and the
// reference is the single-GPU run on the same GPU. GPUs store f32 or bf16, so the f64
// cases are CPU only, and the overlap test counts MPI calls, so it is CPU only as well.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "model/gather_model.hpp"
#include "model/grad_buckets.hpp"
#include "model/parameter_parts.hpp"
#include "model/trainer.hpp"
#include "parallel/token_split.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/rng.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/mpi/mpi_traffic_counter.hpp"

namespace ratrain {
namespace {

constexpr Device kDevice = kTestDevice;

constexpr std::int64_t kBatch = 4, kSeq = 24, kVocab = 37, kIters = 3;
// The tiny model has about 15,000 parameters: 2 KiB buckets make 30 (f32) to 60 (f64).
constexpr std::int64_t kTinyBucketBytes = 2048;

// f32: sums in other orders over 3 to 6 AdamW steps. f64: the same computation exactly
// but for rounding.
double tolerance(DType dtype) { return dtype == DType::f32 ? 1e-5 : 1e-12; }

ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab_size = kVocab;
  c.d_model = 16;
  c.num_heads = 4;
  c.num_layers = 4;  // 2 per stage under pp2, 1 under pp4
  // Layer 0: D = 4 with a window that crosses chunk boundaries and a prefix longer than
  // a chunk; layer 1: D = 3, nothing else; layers 2 and 3 other mixes.
  c.sparse_rules = {Sparsity{.dilation = 4, .window = 5, .initial = 14},
                    Sparsity{.dilation = 3, .window = 0, .initial = 0},
                    Sparsity{.dilation = 6, .window = 2, .initial = 0},
                    Sparsity{.dilation = 4, .window = 0, .initial = 3}};
  return c;
}

// Iteration i's (B, T) ids and labels, a few labels -100.
std::pair<Tensor, Tensor> batch_of(std::int64_t iter) {
  Tensor ids = Tensor::empty({kBatch, kSeq}, DType::i32);
  Tensor labels = Tensor::empty({kBatch, kSeq}, DType::i32);
  const CounterRng rng(11 + static_cast<std::uint64_t>(iter), "test.model_parallel");
  for (std::int64_t i = 0; i < kBatch * kSeq; ++i) {
    ids.data<std::int32_t>()[i] = static_cast<std::int32_t>(rng.below(2 * i, kVocab));
    labels.data<std::int32_t>()[i] =
        i % 9 == 4 ? -100 : static_cast<std::int32_t>(rng.below(2 * i + 1, kVocab));
  }
  return {ids, labels};
}

struct TrainingRun {
  std::vector<ModeStepResult> steps;
  std::unique_ptr<RatLM> model;
};

// A layout under test, and how it runs its rows: `micro_batch` rows at a time (0: all
// of a rank's rows at once), with or without activation recompute, and the optimizer's
// gradient bucket size.
struct LayoutCase {
  ParallelSizes sizes;
  std::int64_t micro_batch = 0;
  bool recompute = false;
  std::int64_t bucket_bytes = AdamWConfig{}.bucket_bytes;
};

TrainingRun train(const ParallelContext& ctx, Schedule schedule, DType dtype,
                  const LayoutCase& how) {
  TrainingRun run;
  run.model = std::make_unique<RatLM>(tiny_config(), dtype, kDevice, how.recompute, ctx);
  run.model->params().initialize(5, 0.3);
  // eps 1e-5 rather than 1e-8: AdamW divides by sqrt(v), so a gradient element near f32
  // rounding level turns its rounding noise into a full-size step; a larger eps damps
  // that without changing what the layouts must agree on (f64 runs prove they compute
  // the same numbers). Measured largest f32 parameter error over all layouts, 4 layers:
  // eps 1e-6: 6.3e-6 here, 1.6e-5 with the H100 machine's BLAS; eps 1e-5: 1.8e-6 here.
  const AdamWConfig adamw{
      .eps = 1e-5, .weight_decay = 0.1, .clip_norm = 0.5, .bucket_bytes = how.bucket_bytes};
  AdamW optimizer(run.model->params(), adamw, ctx);
  const LrSchedule lr{.base_lr = 2e-2, .eta_min = 2e-3, .warmup_iters = 1, .total_iters = kIters};
  Trainer trainer(*run.model, optimizer, lr, schedule, how.micro_batch);
  for (std::int64_t it = 0; it < kIters; ++it) {
    const auto [ids, labels] = batch_of(it);
    const IterationResult r = trainer.step(ids, labels);
    run.steps.insert(run.steps.end(), r.steps.begin(), r.steps.end());
  }
  return run;
}

double relative_error(const Tensor& a, const Tensor& b) {
  double diff = 0, ref = 0;
  for (std::int64_t i = 0; i < b.numel(); ++i) {
    diff += (a.item(i) - b.item(i)) * (a.item(i) - b.item(i));
    ref += b.item(i) * b.item(i);
  }
  return std::sqrt(diff / std::max(ref, 1e-300));
}

// The layouts of a world of `size` ranks. kBatch = 4 rows: micro_batch 1 gives M = 4
// micro-batches (2 under dp2), micro_batch 2 gives M = 2. Sequence parallelism splits
// zigzag by default (parallel.sp_split): the dense passes of the dense and joint schedules
// then run on chunks r and 2S - 1 - r (sp2: 6 positions each, sp4: 3), the sparse passes
// contiguously; sp2 and sp4 run contiguous as well, and sp8 (chunks of 3) only so.
constexpr SequenceSplit kContiguous = SequenceSplit::contiguous;
std::vector<LayoutCase> default_bucket_layouts(int size) {
  switch (size) {
    case 2: return {{{.tp = 2}}, {{.sp = 2}}, {{.sp = 2, .sp_split = kContiguous}}, {{.dp = 2}},
                    {{.pp = 2}, 1}};
    case 4: return {{{.tp = 2, .sp = 2}}, {{.sp = 4}}, {{.sp = 4, .sp_split = kContiguous}},
                    {{.tp = 2, .dp = 2}}, {{.sp = 2, .dp = 2}}, {{.tp = 4}}, {{.dp = 4}},
                    {{.pp = 4}, 1}, {{.pp = 2, .dp = 2}}, {{.tp = 2, .pp = 2}, 1, true},
                    {{.sp = 2, .pp = 2}, 2}, {{.sp = 2, .pp = 2}, 1, true}};
    // sp8 cuts T = 24 into chunks of 3: contiguous only (zigzag needs 2 sp | T).
    case 8: return {{{.tp = 2, .sp = 2, .dp = 2}}, {{.sp = 8, .sp_split = kContiguous}},
                    {{.sp = 2, .pp = 2, .dp = 2}, 1}, {{.tp = 2, .sp = 2, .pp = 2}, 1, true}};
    default: return {{{.dp = size}}};
  }
}

// default_bucket_layouts, then those with dp > 1 again with tiny buckets, one row per
// micro-batch.
std::vector<LayoutCase> layouts(int size) {
  std::vector<LayoutCase> cases = default_bucket_layouts(size);
  for (const LayoutCase& how : default_bucket_layouts(size))
    if (how.sizes.dp > 1)
      cases.push_back({.sizes = how.sizes, .micro_batch = 1, .recompute = how.recompute,
                       .bucket_bytes = kTinyBucketBytes});
  return cases;
}

std::string describe(const LayoutCase& how) {
  return to_string(how.sizes) + " " + std::string(sequence_split_name(how.sizes.sp_split)) +
         ", micro_batch " + std::to_string(how.micro_batch) +
         (how.recompute ? ", recompute" : "") + ", buckets of " +
         std::to_string(how.bucket_bytes) + " bytes";
}

// The parameters a model file holds (model/gather_model.hpp, what save_model_file
// writes) against the reference's: on world rank 0, every parameter once.
void expect_gathered_parameters(const TrainingRun& run, const TrainingRun& reference,
                                const ParallelContext& ctx, double limit) {
  std::set<std::string> seen;
  gather_model_parameters(tiny_config(), run.model->params(), ctx,
                          [&](const ParamEntry& e, const Tensor& global) {
                            EXPECT_TRUE(seen.insert(e.name).second) << e.name << " twice";
                            const Tensor want =
                                reference.model->params().value(e.name).to(Device::cpu);
                            ASSERT_EQ(global.shape(), want.shape()) << e.name;
                            EXPECT_LE(relative_error(global, want), limit) << e.name;
                          });
  if (ctx.world_rank == 0) {
    EXPECT_EQ(seen.size(), reference.model->params().table().entries().size());
  }
}

class ModelParallel : public ::testing::TestWithParam<std::tuple<Schedule, DType>> {
 protected:
  // On the GPU: one GPU per rank of the node, or the test is skipped on every rank alike
  // (a node's ranks all see the same count).
  void SetUp() override {
    if (const std::string why = missing_gpus(); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_P(ModelParallel, ThreeIterationsMatchOneProcess) {
  const auto [schedule, dtype] = GetParam();
  const double limit = tolerance(dtype);
  std::map<std::int64_t, TrainingRun> references;  // by micro_batch
  const Group world = world_group();
  if (kDevice == Device::cuda) bind_local_device(world.split_by_node().rank());
  for (const LayoutCase& how : layouts(world.size())) {
    SCOPED_TRACE(describe(how) + " " + schedule_name(schedule));
    if (!references.contains(how.micro_batch)) {
      const LayoutCase one_process{.sizes = {}, .micro_batch = how.micro_batch};
      references.emplace(how.micro_batch,
                         train(ParallelContext::single_process(), schedule, dtype, one_process));
    }
    const TrainingRun& reference = references.at(how.micro_batch);
    const ParallelContext ctx = ParallelContext::create(world, how.sizes, kDevice);
    const TrainingRun run = train(ctx, schedule, dtype, how);
    // The dense passes ran under the layout's split, the sparse ones contiguously.
    EXPECT_EQ(run.model->sequence_split(AttentionMode::dense),
              how.sizes.sp > 1 ? how.sizes.sp_split : SequenceSplit::contiguous);
    EXPECT_EQ(run.model->sequence_split(AttentionMode::sparse), SequenceSplit::contiguous);
    ASSERT_EQ(run.steps.size(), reference.steps.size());
    for (std::size_t s = 0; s < run.steps.size(); ++s) {
      const ModeStepResult &got = run.steps[s], &want = reference.steps[s];
      EXPECT_EQ(got.valid, want.valid) << "step " << s;
      EXPECT_NEAR(got.loss, want.loss, limit * std::abs(want.loss)) << "step " << s;
      EXPECT_NEAR(got.grad_norm, want.grad_norm, limit * want.grad_norm) << "step " << s;
    }
    // This rank's part of every parameter of its stage against the same part of the
    // reference (on the last stage, the embedding's copy too).
    const ParamStore& params = run.model->params();
    for (const ParamEntry& e : params.table().entries()) {
      const Tensor want = local_part(e, reference.model->params().value(e.name));
      EXPECT_LE(relative_error(params.value(e.name).to(Device::cpu), want), limit) << e.name;
    }
    expect_gathered_parameters(run, reference, ctx, limit);
  }
}

// One data-parallel training step's pieces for the overlap tests: the tiny model (f64),
// its optimizer with 2 KiB buckets, the bucket cut, and this rank's tokens of batch 0.
struct OverlapStep {
  explicit OverlapStep(const ParallelContext& context)
      : ctx(context),
        model(tiny_config(), DType::f64, Device::cpu, false, context),
        optimizer(model.params(), {.bucket_bytes = kTinyBucketBytes}, context),
        buckets(cut_grad_buckets(model.params().table(), model.params().padded_numel(),
                                 context.dp.size(),
                                 kTinyBucketBytes / static_cast<std::int64_t>(sizeof(double)))) {
    model.params().initialize(5, 0.3);
    const auto [ids, labels] = batch_of(0);
    const SequenceSplit split = model.sequence_split(AttentionMode::sparse);
    local_ids = local_tokens(ids, ctx, split);
    local_labels = local_tokens(labels, ctx, split);
  }
  // zero_grads, a forward and backward pass with micro-batches of one row, reporting to
  // the optimizer and then to `also`.
  void forward_backward(const RatLM::GradientsFinal& also) {
    model.params().zero_grads();
    model.forward_backward(local_ids, local_labels, AttentionMode::sparse, 1e-2,
                           static_cast<int>(local_ids.dim(0)),
                           [&](std::int64_t begin, std::int64_t end) {
                             optimizer.gradients_final(begin, end);
                             also(begin, end);
                           });
  }
  long long bucket_count() const { return static_cast<long long>(buckets.size()); }

  const ParallelContext& ctx;
  RatLM model;
  AdamW optimizer;
  std::vector<GradBucket> buckets;
  Tensor local_ids, local_labels;
};

// Calls body(run) for a fresh OverlapStep in every layout of this world with data
// parallelism and one pipeline stage.
template <typename Body>
void for_each_data_parallel_layout(Body&& body) {
  const Group world = world_group();
  for (const LayoutCase& how : default_bucket_layouts(world.size())) {
    if (how.sizes.dp == 1 || how.sizes.pp > 1) continue;
    SCOPED_TRACE(to_string(how.sizes));
    const ParallelContext ctx = ParallelContext::create(world, how.sizes);
    OverlapStep run(ctx);
    body(run);
  }
}

// The overlap with backward (DESIGN.md "DP"): in one training step of every
// data-parallel layout of one stage, with 2 KiB buckets and micro-batches of one row, the
// reduce-scatters of all buckets that lie within layers 1 to L-1 and the final norm have
// started when the last micro-batch's backward pass reports layer 1 final, that is before
// layer 0's backward runs; the rest (buckets holding layer 0 or the embedding) start
// later. Every bucket is reduce-scattered and all-gathered exactly once.
#ifndef RATRAIN_TEST_ON_GPU
TEST(DataParallelOverlap, LastLayersBucketsStartBeforeTheFirstLayersBackward) {
  for_each_data_parallel_layout([](OverlapStep& run) {
    const std::int64_t layer1_begin =
        run.model.params().table().find(RatBlock::prefix(1) + "seq_layer.input_norm.weight").offset;
    const auto ready_before_layer0 =
        std::count_if(run.buckets.begin(), run.buckets.end(),
                      [&](const GradBucket& b) { return b.begin >= layer1_begin; });
    long long started_before_layer0 = -1;
    const test::Traffic traffic = test::traffic_of([&] {
      run.forward_backward([&](std::int64_t begin, std::int64_t) {
        if (begin == layer1_begin)
          started_before_layer0 = test::calls_so_far(test::MpiCall::reduce_scatter_start);
      });
      run.optimizer.step(1e-3);
    });
    EXPECT_GT(ready_before_layer0, 0);
    EXPECT_LT(ready_before_layer0, run.bucket_count());
    EXPECT_EQ(started_before_layer0, ready_before_layer0);
    EXPECT_EQ(traffic[test::MpiCall::reduce_scatter_start].calls, run.bucket_count()) << traffic;
    EXPECT_EQ(traffic[test::MpiCall::all_gather_start].calls, run.bucket_count()) << traffic;
  });
}

// The overlap with the next forward pass: step() starts every bucket's all-gather of the
// updated values and waits for none of them: all are still in flight when it returns
// (no MPI all-gather is waited inside it), and the next forward pass completes every one.
TEST(DataParallelOverlap, UpdatedValuesArriveDuringTheNextForwardPass) {
  for_each_data_parallel_layout([](OverlapStep& run) {
    run.forward_backward([](std::int64_t, std::int64_t) {});
    const test::Traffic step = test::traffic_of([&] { run.optimizer.step(1e-3); });
    EXPECT_EQ(step[test::MpiCall::all_gather_start].calls, run.bucket_count()) << step;
    EXPECT_EQ(run.optimizer.buckets_in_flight(), run.bucket_count());
    run.model.forward(run.local_ids, run.local_labels, AttentionMode::sparse);
    EXPECT_EQ(run.optimizer.buckets_in_flight(), 0);
  });
}
#endif

// The GPU kernels take f32 and bf16 storage, not f64.
#ifdef RATRAIN_TEST_ON_GPU
#define RATRAIN_TEST_DTYPES ::testing::Values(DType::f32)
#else
#define RATRAIN_TEST_DTYPES ::testing::Values(DType::f32, DType::f64)
#endif

INSTANTIATE_TEST_SUITE_P(
    Schedules, ModelParallel,
    ::testing::Combine(::testing::Values(Schedule::dense, Schedule::sparse, Schedule::joint),
                       RATRAIN_TEST_DTYPES),
    [](const auto& param_info) {
      return schedule_name(std::get<0>(param_info.param)) + "_" +
             std::string(dtype_name(std::get<1>(param_info.param)));
    });

}  // namespace
}  // namespace ratrain
