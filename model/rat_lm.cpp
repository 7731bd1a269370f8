#include "model/rat_lm.hpp"

#include <algorithm>

#include "model/pipeline_runner.hpp"
#include "parallel/sequence_split.hpp"
#include "parallel/vocab_parallel.hpp"

namespace ratrain {

namespace {
const char* const kEmbedding = "embedding.wte.weight";
const char* const kFinalNorm = "backbone.ln.weight";

// Checks that `c` splits over the layout and returns the parameter table of this
// rank's part of `stage`.
ParamTable checked_param_table(const ModelConfig& c, const ParallelContext& ctx,
                               const PipelineStage& stage) {
  c.validate();
  RT_REQUIRE(c.num_heads % ctx.sizes.tp == 0, "parallel.tp (", ctx.sizes.tp,
             ") must divide model.num_heads (", c.num_heads, "): tensor parallelism splits heads");
  return RatLM::make_param_table(c, ctx.tp, stage);
}

}  // namespace

// The saved activations of one micro-batch between its forward and its backward on
// this stage (N = rows * positions of the micro-batch, L_s = the stage's layers).
struct RatLM::MicroBatch {
  MicroBatch(const BlockDims& d, const PipelineStage& stage, bool recompute, DType dtype,
             Device device) {
    const Shape nd{d.rows(), d.d};
    for (std::int64_t l = 0; l <= stage.num_layers(); ++l)
      residual.push_back(Tensor::empty(nd, dtype, device));
    if (!recompute)
      for (std::int64_t l = 0; l < stage.num_layers(); ++l) acts.emplace_back(d, dtype, device);
    if (stage.is_last()) {
      final_normed = Tensor::empty(nd, dtype, device);
      final_rstd = Tensor::empty({d.rows()}, statistics_dtype(dtype, device), device);
    }
    ids = Tensor::empty({d.rows()}, DType::i32, device);
    labels = Tensor::empty({d.rows()}, DType::i32, device);
  }
  std::vector<Tensor> residual;        // L_s + 1 of (N, d): input of layer l; [L_s] = output
  std::vector<BlockActivations> acts;  // L_s; none under recompute (StageBuffers::recomputed)
  Tensor final_normed, final_rstd;     // (N, d), (N); the last stage only
  Tensor ids, labels;                  // (N) i32 on the model's device
};

// Everything a stage's passes use: the micro-batches in flight and the buffers that
// live only within one pass.
struct RatLM::StageBuffers {
  StageBuffers(const BlockDims& d, const PipelineStage& stage, int slots, bool recompute,
               DType dtype, Device device)
      : dims(d), scratch(d, dtype, device) {
    for (int s = 0; s < slots; ++s) in_flight.emplace_back(d, stage, recompute, dtype, device);
    if (recompute) recomputed.emplace(d, dtype, device);
    const Shape nd{d.rows(), d.d};
    d_final = Tensor::empty(nd, dtype, device);
    d_residual = Tensor::empty(nd, dtype, device);
  }
  BlockDims dims;
  // Micro-batch m uses in_flight[m % size]: the micro-batches between forward and
  // backward are consecutive and at most max_in_flight(plan) <= size of them.
  std::vector<MicroBatch> in_flight;
  std::optional<BlockActivations> recomputed;  // under recompute: refilled per layer
  BlockScratch scratch;
  Tensor d_final, d_residual;  // (N, d)
};

// One run of a plan over this rank's micro-batches, as run_pipeline drives it.
class RatLM::StageRun final : public PipelineStageWork {
 public:
  // ids, labels: (B, T) cut into micro-batches of `rows` rows, in token order under
  // `split`. No grad_scale: forward only. The last backward pass reports final gradients
  // to `gradients_final` (may be empty).
  StageRun(RatLM& model, StageBuffers& b, const Tensor& ids, const Tensor& labels,
           std::int64_t rows, std::vector<Sparsity> rules, SequenceSplit split,
           std::optional<double> grad_scale, const GradientsFinal& gradients_final)
      : model_(model), b_(b), ids_(ids), labels_(labels), rows_(rows), rules_(std::move(rules)),
        split_(split), grad_scale_(grad_scale), gradients_final_(gradients_final) {}

  Tensor& input(int m) override { return slot(m).residual.front(); }
  const Tensor& output(int m) override { return slot(m).residual.back(); }
  // One backward pass at a time, in place: d_residual holds d loss / d output before it
  // and d loss / d input after it.
  Tensor& output_grad(int) override { return b_.d_residual; }
  const Tensor& input_grad(int) override { return b_.d_residual; }

  void forward(int m) override {
    MicroBatch& mb = slot(m);
    const std::int64_t begin = m * rows_;
    mb.ids.copy_from(micro_batch_rows(ids_, begin));
    mb.labels.copy_from(micro_batch_rows(labels_, begin));
    model_.forward_stage(b_, mb, rules_, split_);
    // Training computes the loss with its gradient when the backward pass starts.
    if (!grad_scale_ && model_.stage_.is_last()) add(model_.stage_loss(mb));
  }
  void backward(int m) override {
    MicroBatch& mb = slot(m);
    // Gradients accumulate over the micro-batches: only the last backward finalizes them.
    const bool last = ++backward_passes_ == ids_.dim(0) / rows_;
    const GradientsFinal* final_reports = last && gradients_final_ ? &gradients_final_ : nullptr;
    const PipelineStage& stage = model_.stage_;
    if (stage.is_last()) {
      add(model_.stage_loss_backward(b_, mb, grad_scale_.value()));
      if (final_reports) {
        model_.report_final(*final_reports, kFinalNorm);
        if (!stage.is_first()) model_.report_final(*final_reports, kEmbedding);
      }
    }
    model_.backward_stage(b_, mb, rules_, split_, final_reports);
  }

  // The loss sum and valid labels of every micro-batch: the last stage's, 0 elsewhere.
  const ops::CrossEntropyResult& total() const { return total_; }

 private:
  MicroBatch& slot(int m) { return b_.in_flight[m % b_.in_flight.size()]; }
  // The micro-batch's rows [begin, begin + rows_) of ids or labels (token order), flat
  // and piece-major as the layers take them (parallel/sequence_split.hpp).
  Tensor micro_batch_rows(const Tensor& tokens, std::int64_t begin) const {
    const Tensor rows = tokens.rows(begin, begin + rows_);
    const int pieces = pieces_per_rank(split_);
    return (pieces == 1 ? rows : piece_major_tokens(rows, pieces)).view({rows.numel()});
  }
  void add(const ops::CrossEntropyResult& r) {
    total_.loss_sum += r.loss_sum;
    total_.valid += r.valid;
  }

  RatLM& model_;
  StageBuffers& b_;
  const Tensor& ids_;
  const Tensor& labels_;
  std::int64_t rows_;
  std::vector<Sparsity> rules_;
  SequenceSplit split_;
  std::optional<double> grad_scale_;
  const GradientsFinal& gradients_final_;
  std::int64_t backward_passes_ = 0;
  ops::CrossEntropyResult total_;
};

ParamTable RatLM::make_param_table(const ModelConfig& c, const Group& tp,
                                   const PipelineStage& stage) {
  ParamTable table;
  if (stage.is_first() || stage.is_last()) {
    const VocabRange vocab = vocab_range(c.vocab_size, tp.size(), tp.rank());
    table.add(kEmbedding, {c.vocab_size, c.d_model}, InitKind::normal,
              tp.size() > 1
                  ? ShardSpec{.dim = 0, .begin = vocab.begin, .length = vocab.end - vocab.begin}
                  : ShardSpec::whole(),
              stage.count > 1 ? StageCopies::first_and_last : StageCopies::one);
  }
  for (std::int64_t l = stage.first_layer; l < stage.end_layer; ++l)
    RatBlock::register_params(table, c, l, tp);
  if (stage.is_last()) table.add(kFinalNorm, {c.d_model}, InitKind::ones);
  return table;
}

RatLM::RatLM(ModelConfig config, DType dtype, Device device, bool recompute, ParallelContext ctx)
    : config_(std::move(config)),
      ctx_(std::move(ctx)),
      stage_(pipeline_stage(config_.num_layers, ctx_.pp.size(), ctx_.pp.rank())),
      vocab_begin_(vocab_range(config_.vocab_size, ctx_.tp.size(), ctx_.tp.rank()).begin),
      dtype_(dtype),
      device_(device),
      recompute_(recompute),
      store_(checked_param_table(config_, ctx_, stage_), dtype, device, ctx_.dp.size()) {
  for (std::int64_t l = stage_.first_layer; l < stage_.end_layer; ++l)
    blocks_.emplace_back(config_, l, store_, ctx_);
}

RatLM::~RatLM() = default;

RatLM::StageBuffers& RatLM::buffers_for(std::int64_t rows, std::int64_t seq, int slots) {
  const int tp = ctx_.tp.size();
  const BlockDims dims{rows, seq, config_.d_model, config_.num_heads / tp, config_.head_dim(),
                       config_.ffn_dim() / tp};
  if (!buffers_ || !(buffers_->dims == dims) ||
      static_cast<int>(buffers_->in_flight.size()) < slots)
    buffers_ = std::make_unique<StageBuffers>(dims, stage_, slots, recompute_, dtype_, device_);
  return *buffers_;
}

SequenceSplit RatLM::sequence_split(AttentionMode mode) const {
  return pass_split(ctx_.sizes.sp_split, ctx_.sp.size(), config_.layer_rules(mode));
}

void RatLM::forward_stage(StageBuffers& b, MicroBatch& mb, const std::vector<Sparsity>& rules,
                          SequenceSplit split) {
  // Each part waits only for its own parameters (store_.value() waits for the named one;
  // the layers' views are kept, so they wait here): the values of the layers after it may
  // still be arriving from the last optimizer step.
  if (stage_.is_first())
    vocab_parallel_embedding_forward(ctx_.tp, mb.ids, store_.value(kEmbedding), vocab_begin_,
                                     mb.residual.front());
  for (std::size_t l = 0; l < blocks_.size(); ++l) {
    BlockActivations& act = recompute_ ? *b.recomputed : mb.acts[l];
    store_.await_values(blocks_[l].param_range());
    blocks_[l].forward(b.dims, rules[stage_.first_layer + l], split, mb.residual[l],
                       mb.residual[l + 1], act, b.scratch);
  }
  if (stage_.is_last())
    ops::rmsnorm_forward(mb.residual.back(), store_.value(kFinalNorm), config_.norm_eps,
                         mb.final_normed, mb.final_rstd);
}

ops::CrossEntropyResult RatLM::stage_loss(const MicroBatch& mb) const {
  return vocab_parallel_cross_entropy(ctx_.tp, mb.final_normed, store_.value(kEmbedding),
                                      vocab_begin_, mb.labels, 0.0, nullptr, nullptr);
}

ops::CrossEntropyResult RatLM::stage_loss_backward(StageBuffers& b, MicroBatch& mb,
                                                   double grad_scale) {
  Tensor demb = store_.grad(kEmbedding);
  const auto result = vocab_parallel_cross_entropy(ctx_.tp, mb.final_normed,
                                                   store_.value(kEmbedding), vocab_begin_,
                                                   mb.labels, grad_scale, &b.d_final, &demb);
  Tensor dnorm = store_.grad(kFinalNorm);
  ops::rmsnorm_backward(mb.residual.back(), store_.value(kFinalNorm), mb.final_rstd, b.d_final,
                        b.d_residual, dnorm);
  return result;
}

void RatLM::backward_stage(StageBuffers& b, MicroBatch& mb, const std::vector<Sparsity>& rules,
                           SequenceSplit split, const GradientsFinal* final_reports) {
  for (std::size_t l = blocks_.size(); l-- > 0;) {
    const Sparsity& rule = rules[stage_.first_layer + l];
    BlockActivations& act = recompute_ ? *b.recomputed : mb.acts[l];
    if (recompute_) {
      // Refill the shared activations; the recomputed output equals residual[l+1]
      // already stored, so it goes to the scratch d_final buffer, unused here.
      blocks_[l].forward(b.dims, rule, split, mb.residual[l], b.d_final, act, b.scratch);
    }
    blocks_[l].backward(b.dims, rule, split, mb.residual[l], act, b.d_residual, b.d_residual,
                        b.scratch);
    if (final_reports) {
      const auto [begin, end] = blocks_[l].param_range();
      (*final_reports)(begin, end);
    }
  }
  if (stage_.is_first()) {
    Tensor demb = store_.grad(kEmbedding);
    vocab_parallel_embedding_backward(ctx_.tp, mb.ids, b.d_residual, vocab_begin_, demb);
    if (final_reports) report_final(*final_reports, kEmbedding);
  }
}

void RatLM::report_final(const GradientsFinal& final_reports, const std::string& prefix) const {
  const auto [begin, end] = store_.range_of(prefix);
  final_reports(begin, end);
}

ops::CrossEntropyResult RatLM::run_plan(const std::vector<PipelineStep>& plan, const Tensor& ids,
                                        const Tensor& labels, AttentionMode mode,
                                        std::optional<double> grad_scale, int micro_batches,
                                        const GradientsFinal& gradients_final) {
  RT_REQUIRE(ids.rank() == 2 && ids.dtype() == DType::i32, "input_ids must be (B, T) int32, got ",
             shape_str(ids.shape()), " ", dtype_name(ids.dtype()));
  require_shape(labels, ids.shape(), "labels");
  RT_REQUIRE(micro_batches >= 1 && ids.dim(0) % micro_batches == 0, "the ", ids.dim(0),
             " rows of a rank's batch do not split into ", micro_batches, " micro-batches");
  const std::int64_t rows = ids.dim(0) / micro_batches;
  StageBuffers& b = buffers_for(rows, ids.dim(1), max_in_flight(plan));
  StageRun run(*this, b, ids, labels, rows, config_.layer_rules(mode), sequence_split(mode),
               grad_scale, gradients_final);
  run_pipeline(ctx_.pp, plan, run);
  // Only the last stage scored the tokens; every stage returns its numbers.
  Tensor result = Tensor::empty({2}, DType::f64);
  result.data<double>()[0] = run.total().loss_sum;
  result.data<double>()[1] = static_cast<double>(run.total().valid);
  ctx_.pp.broadcast(result, stage_.count - 1);
  return {.loss_sum = result.item(0), .valid = static_cast<std::int64_t>(result.item(1))};
}

ops::CrossEntropyResult RatLM::forward_backward(const Tensor& ids, const Tensor& labels,
                                                AttentionMode mode, double grad_scale,
                                                int micro_batches,
                                                const GradientsFinal& gradients_final) {
  return run_plan(training_plan(stage_.count, stage_.index, micro_batches), ids, labels, mode,
                  grad_scale, micro_batches, gradients_final);
}

ops::CrossEntropyResult RatLM::forward(const Tensor& ids, const Tensor& labels,
                                       AttentionMode mode, Tensor* logits) {
  RT_REQUIRE(!logits || (ctx_.tp.size() == 1 && stage_.count == 1 &&
                         sequence_split(mode) == SequenceSplit::contiguous),
             "logits are only available with parallel.tp = 1, parallel.pp = 1 and one "
             "contiguous chunk per rank (parallel.sp = 1 or parallel.sp_split = contiguous)");
  const auto result = run_plan(forward_plan(stage_.count, stage_.index, 1), ids, labels, mode,
                               std::nullopt, 1, {});
  if (logits) {
    const MicroBatch& mb = buffers_->in_flight.front();
    *logits = Tensor::empty({ids.dim(0), ids.dim(1), config_.vocab_size}, dtype_, device_);
    Tensor flat = logits->view({ids.numel(), config_.vocab_size});
    ops::linear_forward(mb.final_normed, store_.value(kEmbedding), flat);
  }
  return result;
}

}  // namespace ratrain
