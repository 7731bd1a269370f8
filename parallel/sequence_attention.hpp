// Sequence-parallel attention (DESIGN.md "Parallel layout", SP "Attention"): each rank of
// the sp group holds the pieces of every sample that the split gives it
// (parallel/sequence_split.hpp): contiguous, rank r of S the positions [r Tc, (r + 1) Tc);
// zigzag, chunks r and 2S - 1 - r of L = Tc / 2. It computes its rows of
// ops::attention_forward / _backward over the whole sequence. Operands are piece-major:
// q, k, v, out, dout, dq, dk, dv (count B, L, H, dh), piece i at batch rows
// [i B, (i + 1) B), q and k already RoPE'd with global positions; lse (count B, H, L).
// With one piece that is (B, Tc, H, dh) and (B, H, Tc). Host f32 / f64 or device bf16 / f32
// tensors, one dtype on one device; lse in the attention ops' statistics type (the
// operands' dtype on the CPU, f32 on the GPU). Every buffer made here lives on the
// operands' device; several ranks need Group's collectives and send/recv for that device.
//
// Invariants:
// - Collective over sp: every rank calls with the same split, rule, B, Tc, H, dh and dtype.
// - The zigzag split takes the dense rule's ring only; a dilated or local rule needs the
//   contiguous split (an error otherwise).
// - No rank ever holds the whole sequence's K or V: the dilated / local regime assembles
//   only the keys its queries can see (parallel/dilated_key_plan.hpp); the dense regime
//   holds two ring blocks of Tc keys at a time.
// - A group of one calls ops::attention_forward / _backward directly.
// - Backward takes the forward's out and lse and recomputes the key exchange instead of
//   keeping the assembled keys alive from forward to backward.
#pragma once

#include "kernels/visibility.hpp"
#include "parallel/group.hpp"
#include "parallel/rank_layout.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

// This rank's rows of attention_forward over the whole sequence: ring attention for a
// dense rule, dilated_sp_attention otherwise. out, lse overwritten.
void sp_attention_forward(const Group& sp, SequenceSplit split, const Tensor& q, const Tensor& k,
                          const Tensor& v, const Sparsity& rule, Tensor& out, Tensor& lse);
// This rank's rows of attention_backward; dq, dk, dv overwritten (dk, dv of this rank's
// keys, summed over the queries of every rank).
void sp_attention_backward(const Group& sp, SequenceSplit split, const Tensor& q, const Tensor& k,
                           const Tensor& v, const Tensor& out, const Tensor& lse,
                           const Tensor& dout, const Sparsity& rule, Tensor& dq, Tensor& dk,
                           Tensor& dv);

// ---- the two regimes (sp.size() > 1), which sp_attention_* choose between -------------
// Dilated or local-only rule (D != 1): prefix and halo keys point to point, chunk ends
// all-gathered (backward: returned point to point and reduce-scattered), one online
// softmax over the assembled set (sequence_attention_dilated.cpp).
void dilated_sp_attention_forward(const Group& sp, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Sparsity& rule, Tensor& out,
                                  Tensor& lse);
void dilated_sp_attention_backward(const Group& sp, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const Tensor& out, const Tensor& lse,
                                   const Tensor& dout, const Sparsity& rule, Tensor& dq,
                                   Tensor& dk, Tensor& dv);
// Ring attention: K, V blocks passed around the sp ring, partial results merged by
// log-sum-exp (ring_attention.cpp). Either split; correct for any rule, economical for
// the dense one (balanced across ranks with the zigzag split).
void ring_attention_forward(const Group& sp, SequenceSplit split, const Tensor& q,
                            const Tensor& k, const Tensor& v, const Sparsity& rule, Tensor& out,
                            Tensor& lse);
void ring_attention_backward(const Group& sp, SequenceSplit split, const Tensor& q,
                             const Tensor& k, const Tensor& v, const Tensor& out,
                             const Tensor& lse, const Tensor& dout, const Sparsity& rule,
                             Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace ratrain
