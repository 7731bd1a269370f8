// sp_attention_forward / _backward: a group of one runs the single-process op; several
// ranks take ring attention for a dense rule and the dilated exchange otherwise, since
// a dense rule's keys are every earlier position, which only the ring serves without
// one rank holding them all.
#include "parallel/sequence_attention.hpp"

#include "kernels/ops.hpp"

namespace ratrain {

void sp_attention_forward(const Group& sp, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Sparsity& rule, Tensor& out, Tensor& lse) {
  if (sp.size() == 1) return ops::attention_forward(q, k, v, rule, out, lse);
  if (rule.is_dense()) return ring_attention_forward(sp, q, k, v, rule, out, lse);
  dilated_sp_attention_forward(sp, q, k, v, rule, out, lse);
}

void sp_attention_backward(const Group& sp, const Tensor& q, const Tensor& k, const Tensor& v,
                           const Tensor& out, const Tensor& lse, const Tensor& dout,
                           const Sparsity& rule, Tensor& dq, Tensor& dk, Tensor& dv) {
  if (sp.size() == 1) return ops::attention_backward(q, k, v, out, lse, dout, rule, dq, dk, dv);
  if (rule.is_dense())
    return ring_attention_backward(sp, q, k, v, out, lse, dout, rule, dq, dk, dv);
  dilated_sp_attention_backward(sp, q, k, v, out, lse, dout, rule, dq, dk, dv);
}

}  // namespace ratrain
