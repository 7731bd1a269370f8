// Host-side checks and dispatch for the training ops of ops.hpp: the tied head with
// cross-entropy, label counting and the optimizer kernels (AdamW, sum of squares,
// scaling).
#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace ratrain::ops {

using detail::dispatch_float;
using detail::Named;
using detail::require_rank;
using detail::require_shapes;

CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                           const Tensor& labels, double grad_scale, Tensor* dx,
                                           Tensor* demb) {
  constexpr const char* op = "tied_head_cross_entropy";
  require_rank(x, 2, "tied_head_cross_entropy: x");
  require_rank(emb, 2, "tied_head_cross_entropy: emb");
  require_shapes({emb.dim(0), x.dim(1)}, {{&emb, "emb (V, C)"}}, op);
  detail::require_index_tensor(labels, x.dim(0), x, "tied_head_cross_entropy: labels");
  require_same_type(x, {&emb}, op);
  if (dx) {
    require_shapes(x.shape(), {{dx, "dx"}}, op);
    require_same_type(x, {dx}, op);
  }
  if (demb) {
    require_shapes(emb.shape(), {{demb, "demb"}}, op);
    detail::require_f32_on_gpu(x, *demb, "demb", op);
  }
  RT_DISPATCH_CUDA(x, tied_head_cross_entropy, x, emb, labels, grad_scale, dx, demb);
  return dispatch_float(x, op, [&](auto t) {
    return cpu::tied_head_cross_entropy<decltype(t)>(x, emb, labels, grad_scale, dx, demb);
  });
}

std::int64_t count_valid_labels(const Tensor& labels) {
  RT_REQUIRE(labels.dtype() == DType::i32, "count_valid_labels: labels must be i32, got ",
             dtype_name(labels.dtype()));
  RT_DISPATCH_CUDA(labels, count_valid_labels, labels);
  RT_REQUIRE(labels.device() == Device::cpu,
             "count_valid_labels: got a cuda tensor but ratrain was built without the CUDA "
             "backend");
  return cpu::count_valid_labels(labels);
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h) {
  const Named operands[] = {{&grad, "grad"}, {&m, "m"}, {&v, "v"}};
  for (const Named& n : operands)
    RT_REQUIRE(n.tensor->numel() == param.numel(), "adamw_update: param has ", param.numel(),
               " elements but ", n.name, " has ", n.tensor->numel());
  require_same_type(param, {&grad, &m, &v}, "adamw_update");
  RT_REQUIRE(h.step >= 1, "adamw_update: step is 1-based, got ", h.step);
  RT_DISPATCH_CUDA(param, adamw_update, param, grad, m, v, h);
  dispatch_float(param, "adamw_update",
                 [&](auto t) { cpu::adamw_update<decltype(t)>(param, grad, m, v, h); });
}

double sum_of_squares(const Tensor& x) {
  RT_DISPATCH_CUDA(x, sum_of_squares, x);
  return dispatch_float(x, "sum_of_squares",
                        [&](auto t) { return cpu::sum_of_squares<decltype(t)>(x); });
}

void scale_inplace(Tensor& x, double factor) {
  RT_DISPATCH_CUDA(x, scale_inplace, x, factor);
  dispatch_float(x, "scale_inplace",
                 [&](auto t) { cpu::scale_inplace<decltype(t)>(x, factor); });
}

}  // namespace ratrain::ops
