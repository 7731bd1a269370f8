#include "model/rat_lm.hpp"

#include "parallel/vocab_parallel.hpp"

namespace ratrain {

namespace {
const char* const kEmbedding = "embedding.wte.weight";
const char* const kFinalNorm = "backbone.ln.weight";

// Checks that `c` splits over the layout and returns its parameter table.
ParamTable checked_param_table(const ModelConfig& c, const ParallelContext& ctx) {
  c.validate();
  RT_REQUIRE(c.num_heads % ctx.sizes.tp == 0, "parallel.tp (", ctx.sizes.tp,
             ") must divide model.num_heads (", c.num_heads, "): tensor parallelism splits heads");
  RT_REQUIRE(ctx.sizes.pp == 1, "parallel.pp > 1 (pipeline parallelism) is not implemented yet");
  return RatLM::make_param_table(c, ctx.tp);
}

}  // namespace

struct RatLM::Buffers {
  Buffers(const BlockDims& d, std::int64_t layers, bool recompute, DType dtype, Device device)
      : dims(d), scratch(d, dtype, device) {
    const Shape nd{d.rows(), d.d};
    for (std::int64_t l = 0; l <= layers; ++l) residual.push_back(Tensor::empty(nd, dtype, device));
    const std::int64_t saved = recompute ? 1 : layers;
    for (std::int64_t l = 0; l < saved; ++l) acts.emplace_back(d, dtype, device);
    final_normed = Tensor::empty(nd, dtype, device);
    final_rstd = Tensor::empty({d.rows()}, statistics_dtype(dtype, device), device);
    d_final = Tensor::empty(nd, dtype, device);
    d_residual = Tensor::empty(nd, dtype, device);
    ids = Tensor::empty({d.rows()}, DType::i32, device);
    labels = Tensor::empty({d.rows()}, DType::i32, device);
  }
  // `tokens` (B, T) i32 as (N) on the model's device: a view when it is there already,
  // else copied into `slot`.
  static Tensor flat_on(Device device, const Tensor& tokens, Tensor& slot) {
    if (tokens.device() == device) return tokens.view(slot.shape());
    slot.copy_from(tokens.view(slot.shape()));
    return slot;
  }
  BlockDims dims;
  std::vector<Tensor> residual;          // L + 1 of (N, d): input of layer l; [L] = output
  std::vector<BlockActivations> acts;    // L, or 1 shared under recompute
  BlockScratch scratch;
  Tensor final_normed, final_rstd;       // (N, d), (N)
  Tensor d_final, d_residual;            // (N, d)
  Tensor ids, labels;                    // (N) i32 on the model's device
};

ParamTable RatLM::make_param_table(const ModelConfig& c, const Group& tp) {
  ParamTable table;
  const VocabRange vocab = vocab_range(c.vocab_size, tp.size(), tp.rank());
  table.add(kEmbedding, {c.vocab_size, c.d_model}, InitKind::normal,
            tp.size() > 1 ? ShardSpec{.dim = 0, .begin = vocab.begin, .length = vocab.end - vocab.begin}
                          : ShardSpec::whole());
  for (std::int64_t l = 0; l < c.num_layers; ++l) RatBlock::register_params(table, c, l, tp);
  table.add(kFinalNorm, {c.d_model}, InitKind::ones);
  return table;
}

RatLM::RatLM(ModelConfig config, DType dtype, Device device, bool recompute, ParallelContext ctx)
    : config_(std::move(config)),
      ctx_(std::move(ctx)),
      vocab_begin_(vocab_range(config_.vocab_size, ctx_.tp.size(), ctx_.tp.rank()).begin),
      dtype_(dtype),
      device_(device),
      recompute_(recompute),
      store_(checked_param_table(config_, ctx_), dtype, device, ctx_.dp.size()) {
  for (std::int64_t l = 0; l < config_.num_layers; ++l)
    blocks_.emplace_back(config_, l, store_, ctx_);
}

RatLM::~RatLM() = default;

RatLM::Buffers& RatLM::buffers_for(const Tensor& ids) {
  RT_REQUIRE(ids.rank() == 2 && ids.dtype() == DType::i32, "input_ids must be (B, T) int32, got ",
             shape_str(ids.shape()), " ", dtype_name(ids.dtype()));
  const int tp = ctx_.tp.size();
  const BlockDims dims{ids.dim(0), ids.dim(1), config_.d_model, config_.num_heads / tp,
                       config_.head_dim(), config_.ffn_dim() / tp};
  if (!buffers_ || !(buffers_->dims == dims))
    buffers_ = std::make_unique<Buffers>(dims, config_.num_layers, recompute_, dtype_, device_);
  return *buffers_;
}

const Tensor& RatLM::run_forward(Buffers& b, const Tensor& ids, const std::vector<Sparsity>& rules) {
  vocab_parallel_embedding_forward(ctx_.tp, ids, store_.value(kEmbedding), vocab_begin_,
                                   b.residual[0]);
  for (std::size_t l = 0; l < blocks_.size(); ++l) {
    BlockActivations& act = b.acts[recompute_ ? 0 : l];
    blocks_[l].forward(b.dims, rules[l], b.residual[l], b.residual[l + 1], act, b.scratch);
  }
  ops::rmsnorm_forward(b.residual.back(), store_.value(kFinalNorm), config_.norm_eps,
                       b.final_normed, b.final_rstd);
  return b.final_normed;
}

ops::CrossEntropyResult RatLM::forward(const Tensor& ids, const Tensor& labels,
                                       AttentionMode mode, Tensor* logits) {
  Buffers& b = buffers_for(ids);
  require_shape(labels, ids.shape(), "labels");
  const Tensor flat_ids = Buffers::flat_on(device_, ids, b.ids);
  const Tensor flat_labels = Buffers::flat_on(device_, labels, b.labels);
  const Tensor& hidden = run_forward(b, flat_ids, config_.layer_rules(mode));
  const Tensor emb = store_.value(kEmbedding);
  if (logits) {
    RT_REQUIRE(ctx_.tp.size() == 1, "logits are only available with parallel.tp = 1");
    *logits = Tensor::empty({b.dims.batch, b.dims.seq, config_.vocab_size}, dtype_, device_);
    Tensor flat = logits->view({b.dims.rows(), config_.vocab_size});
    ops::linear_forward(hidden, emb, flat);
  }
  return vocab_parallel_cross_entropy(ctx_.tp, hidden, emb, vocab_begin_, flat_labels, 0.0,
                                      nullptr, nullptr);
}

ops::CrossEntropyResult RatLM::forward_backward(const Tensor& ids, const Tensor& labels,
                                                AttentionMode mode, double grad_scale) {
  Buffers& b = buffers_for(ids);
  require_shape(labels, ids.shape(), "labels");
  const auto rules = config_.layer_rules(mode);
  const Tensor flat_ids = Buffers::flat_on(device_, ids, b.ids);
  const Tensor flat_labels = Buffers::flat_on(device_, labels, b.labels);
  const Tensor& hidden = run_forward(b, flat_ids, rules);

  Tensor demb = store_.grad(kEmbedding);
  const auto result = vocab_parallel_cross_entropy(ctx_.tp, hidden, store_.value(kEmbedding),
                                                   vocab_begin_, flat_labels, grad_scale,
                                                   &b.d_final, &demb);
  Tensor dnorm = store_.grad(kFinalNorm);
  ops::rmsnorm_backward(b.residual.back(), store_.value(kFinalNorm), b.final_rstd, b.d_final,
                        b.d_residual, dnorm);

  for (std::size_t l = blocks_.size(); l-- > 0;) {
    BlockActivations& act = b.acts[recompute_ ? 0 : l];
    if (recompute_) {
      // Refill the shared activations; the recomputed output equals residual[l+1]
      // already stored, so it goes to the scratch d_final buffer, unused here.
      blocks_[l].forward(b.dims, rules[l], b.residual[l], b.d_final, act, b.scratch);
    }
    blocks_[l].backward(b.dims, rules[l], b.residual[l], act, b.d_residual, b.d_residual, b.scratch);
  }
  vocab_parallel_embedding_backward(ctx_.tp, flat_ids, b.d_residual, vocab_begin_, demb);
  return result;
}

}  // namespace ratrain
