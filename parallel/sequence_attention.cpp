// sp_attention_forward / _backward: a group of one runs the single-process op; several
// ranks take ring attention for a dense rule (either split) and the dilated exchange
// otherwise (contiguous split only), since a dense rule's keys are every earlier
// position, which only the ring serves without one rank holding them all.
#include "parallel/sequence_attention.hpp"

#include "kernels/ops.hpp"

namespace ratrain {

namespace {

// The dilated exchange (halo from the previous rank, chunk ends in rank order) needs one
// contiguous chunk per rank.
void require_contiguous_for_sparse(SequenceSplit split, const Sparsity& rule) {
  RT_REQUIRE(split == SequenceSplit::contiguous, "sequence-parallel attention under a dilated "
             "or local rule (D = ", rule.dilation, ") needs the contiguous split, got ",
             sequence_split_name(split), " (pass_split chooses zigzag for dense passes only)");
}

}  // namespace

void sp_attention_forward(const Group& sp, SequenceSplit split, const Tensor& q, const Tensor& k,
                          const Tensor& v, const Sparsity& rule, Tensor& out, Tensor& lse) {
  if (sp.size() == 1) {
    RT_REQUIRE(split == SequenceSplit::contiguous, "a group of one holds one piece");
    return ops::attention_forward(q, k, v, rule, out, lse);
  }
  if (rule.is_dense()) return ring_attention_forward(sp, split, q, k, v, rule, out, lse);
  require_contiguous_for_sparse(split, rule);
  dilated_sp_attention_forward(sp, q, k, v, rule, out, lse);
}

void sp_attention_backward(const Group& sp, SequenceSplit split, const Tensor& q, const Tensor& k,
                           const Tensor& v, const Tensor& out, const Tensor& lse,
                           const Tensor& dout, const Sparsity& rule, Tensor& dq, Tensor& dk,
                           Tensor& dv) {
  if (sp.size() == 1) {
    RT_REQUIRE(split == SequenceSplit::contiguous, "a group of one holds one piece");
    return ops::attention_backward(q, k, v, out, lse, dout, rule, dq, dk, dv);
  }
  if (rule.is_dense())
    return ring_attention_backward(sp, split, q, k, v, out, lse, dout, rule, dq, dk, dv);
  require_contiguous_for_sparse(split, rule);
  dilated_sp_attention_backward(sp, q, k, v, out, lse, dout, rule, dq, dk, dv);
}

}  // namespace ratrain
