// Softmax attention over the whole sequence under the RAT+ visibility rule,
// flash-style (no T x T buffer): the shared loops of attention_rows.hpp with keys
// enumerated by for_each_visible_key, so a query costs O(T/D + W + P) when sparse.
// q, k, v, out, dout, dq, dk, dv: (B, T, H, dh); lse (B, H, T). Key row n is position n.
// Every query sees at least itself, so its softmax sum is positive.
#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

// The key enumerator of attention_rows.hpp for the whole sequence.
auto visible_keys_of(const Sparsity& rule) {
  return [rule](std::int64_t i, const auto& visit) { for_each_visible_key(rule, i, visit); };
}

}  // namespace

template <typename T>
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                       Tensor& out, Tensor& lse) {
  attention_detail::forward_rows<T>(q, 0, k, v, visible_keys_of(rule), out, lse);
}

template <typename T>
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Sparsity& rule, Tensor& dq,
                        Tensor& dk, Tensor& dv) {
  attention_detail::backward_rows<T>(q, 0, k, v, out, lse, dout, visible_keys_of(rule),
                                     attention_detail::GradMode::overwrite, dq, dk, dv);
}

template void attention_forward<float>(const Tensor&, const Tensor&, const Tensor&,
                                       const Sparsity&, Tensor&, Tensor&);
template void attention_forward<double>(const Tensor&, const Tensor&, const Tensor&,
                                        const Sparsity&, Tensor&, Tensor&);
template void attention_backward<float>(const Tensor&, const Tensor&, const Tensor&,
                                        const Tensor&, const Tensor&, const Tensor&,
                                        const Sparsity&, Tensor&, Tensor&, Tensor&);
template void attention_backward<double>(const Tensor&, const Tensor&, const Tensor&,
                                         const Tensor&, const Tensor&, const Tensor&,
                                         const Sparsity&, Tensor&, Tensor&, Tensor&);

}  // namespace ratrain::cpu
