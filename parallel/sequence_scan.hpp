// The gated recurrence of RAT+ (RATPLUS.md "One layer", step 4) under sequence parallelism
// (DESIGN.md "Parallel layout", SP "Recurrence carry").
//
// Rank r of the S ranks of `sp` holds the pieces of every sample that `split` gives it
// (parallel/sequence_split.hpp), its operands piece-major (count B, L, C): contiguous,
// one piece (B, Tc, C), the rows [r Tc, (r + 1) Tc); zigzag, chunks r and 2S - 1 - r of
// L = Tc / 2 rows, piece i at batch rows [i B, (i + 1) B). Both calls return what the
// single-process ops (ops::gated_scan_forward / _backward) give over the whole sequence,
// restricted to this rank's rows, up to rounding (the carry is added, not scanned
// through).
//
// Invariants:
// - With sp.size() == 1 each call is exactly its op: no summary, no collective.
// - Otherwise each call makes ONE all-gather over sp and no other communication; each rank
//   contributes a summary of count x F x B x C elements in the state type (the gate's dtype, f32 on
//   the GPU), F = ops::kStateSummaryFields (3) forward, ops::kAdjointSummaryFields (5)
//   backward: the bytes never depend on Tc or T.
// - Collective over sp: every rank calls with the same split, B, L and C, in the same order.
// - Device-agnostic: host f32 / f64, or device bf16 / f32 with an f32 gate (the ops'
//   rules); the summaries and carried states are made on the gate's device and type.
#pragma once

#include "parallel/group.hpp"
#include "parallel/rank_layout.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

// g, k, v, gate, K, V: (count B, L, C), this rank's pieces. Equal to gated_scan_forward
// over the whole sequence, restricted to this rank's rows. Collective over sp.
void sp_gated_scan_forward(const Group& sp, SequenceSplit split, const Tensor& g, const Tensor& k,
                           const Tensor& v, Tensor& gate, Tensor& K, Tensor& V);

// Mirror image: gate, k, v, K, V as sp_gated_scan_forward left them; dK, dV this chunk's
// output gradients; dg, dk, dv (count B, L, C) overwritten. Collective over sp.
void sp_gated_scan_backward(const Group& sp, SequenceSplit split, const Tensor& gate,
                            const Tensor& k, const Tensor& v, const Tensor& K, const Tensor& V,
                            const Tensor& dK, const Tensor& dV, Tensor& dg, Tensor& dk,
                            Tensor& dv);

}  // namespace ratrain
