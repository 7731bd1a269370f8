#include "model/rat_lm.hpp"

namespace ratrain {

namespace {
const char* const kEmbedding = "embedding.wte.weight";
const char* const kFinalNorm = "backbone.ln.weight";
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

ParamTable RatLM::make_param_table(const ModelConfig& c) {
  ParamTable table;
  table.add(kEmbedding, {c.vocab_size, c.d_model}, InitKind::normal);
  for (std::int64_t l = 0; l < c.num_layers; ++l) RatBlock::register_params(table, c, l);
  table.add(kFinalNorm, {c.d_model}, InitKind::ones);
  return table;
}

RatLM::RatLM(ModelConfig config, DType dtype, Device device, bool recompute)
    : config_(std::move(config)),
      dtype_(dtype),
      device_(device),
      recompute_(recompute),
      store_((config_.validate(), make_param_table(config_)), dtype, device) {
  for (std::int64_t l = 0; l < config_.num_layers; ++l) blocks_.emplace_back(config_, l, store_);
}

RatLM::~RatLM() = default;

RatLM::Buffers& RatLM::buffers_for(const Tensor& ids) {
  RT_REQUIRE(ids.rank() == 2 && ids.dtype() == DType::i32, "input_ids must be (B, T) int32, got ",
             shape_str(ids.shape()), " ", dtype_name(ids.dtype()));
  const BlockDims dims{ids.dim(0), ids.dim(1), config_.d_model, config_.num_heads,
                       config_.head_dim(), config_.ffn_dim()};
  if (!buffers_ || !(buffers_->dims == dims))
    buffers_ = std::make_unique<Buffers>(dims, config_.num_layers, recompute_, dtype_, device_);
  return *buffers_;
}

const Tensor& RatLM::run_forward(Buffers& b, const Tensor& ids, const std::vector<Sparsity>& rules) {
  ops::embedding_forward(ids, store_.value(kEmbedding), b.residual[0]);
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
    *logits = Tensor::empty({b.dims.batch, b.dims.seq, config_.vocab_size}, dtype_, device_);
    Tensor flat = logits->view({b.dims.rows(), config_.vocab_size});
    ops::linear_forward(hidden, emb, flat);
  }
  return ops::tied_head_cross_entropy(hidden, emb, flat_labels, 0.0, nullptr, nullptr);
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
  const auto result = ops::tied_head_cross_entropy(
      hidden, store_.value(kEmbedding), flat_labels, grad_scale, &b.d_final, &demb);
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
  ops::embedding_backward(flat_ids, b.d_residual, demb);
  return result;
}

}  // namespace ratrain
