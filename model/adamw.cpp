#include "model/adamw.hpp"

#include <cmath>

namespace ratrain {

AdamW::AdamW(ParamStore& store, AdamWConfig config, const ParallelContext& ctx)
    : store_(store),
      config_(config),
      ctx_(ctx),
      m_(Tensor::zeros(store.grads().shape(), store.grads().dtype(), store.grads().device())),
      v_(Tensor::zeros(store.grads().shape(), store.grads().dtype(), store.grads().device())) {}

double AdamW::step(double lr) {
  Tensor& grads = store_.grads();
  const double norm = std::sqrt(ctx_.dp.all_reduce_sum(ops::sum_of_squares(grads)));
  if (config_.clip_norm > 0) {
    // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6), never up.
    const double coef = config_.clip_norm / (norm + 1e-6);
    if (coef < 1.0) ops::scale_inplace(grads, coef);
  }
  ++steps_;
  const ops::AdamWHyper hyper{.lr = lr,
                              .beta1 = config_.beta1,
                              .beta2 = config_.beta2,
                              .eps = config_.eps,
                              .weight_decay = config_.weight_decay,
                              .step = steps_};
  ops::adamw_update(store_.optimizer_values(), grads, m_, v_, hyper);
  store_.publish_master();
  return norm;
}

}  // namespace ratrain
