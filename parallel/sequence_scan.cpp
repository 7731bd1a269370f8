// Sequence-parallel gated recurrence: orchestration only. The per-element work is in the ops
// (kernels/ops.hpp, "The recurrence across chunks of T"), the communication in the sp Group.
//
// Derivation, per (batch, channel). Rank r holds the chunk's rows t = 0..Tc-1 (local
// indices); a_t = sigmoid(g_t), Pi_t = prod_{s<=t} a_s, R_t = prod_{s>t} a_s, P = Pi_{Tc-1}.
//
// Forward. Let K^0 be the chunk scanned from a zero state and K_in the state entering it
// (the previous rank's last K; 0 on rank 0). The step K_t = a_t K_{t-1} + (1 - a_t) k_t is
// affine in K_{t-1}, so by induction on t
//   K_t = K^0_t + Pi_t K_in,                                                         (1)
// and the chunk hands on P K_in + X, X = K^0_{Tc-1}. K_in of rank r is therefore the fold
// K_in <- P_q K_in + X_q over the earlier ranks q = 0..r-1 from K_in = 0; V likewise with
// the same P. So: scan from zero, all-gather (P, X_K, X_V), fold, add (1).
//
// Backward. Let A_t = dL/dK_t through every later row (A' for V). Inside the chunk
//   A_t = dK_t + a_{t+1} A_{t+1},   A_{Tc-1} = dK_{Tc-1} + c_K,
// c_K = dL/dK_{Tc-1} through the later ranks only. gated_scan_backward on the chunk computes
// A^0, i.e. A with c = 0, and A is affine in c:
//   A_t = A^0_t + R_t c_K.                                                           (2)
// The adjoint leaving the chunk towards the previous rank is
//   dL/dK_in = a_0 A_0 = P c_K + Z,   Z = a_0 A^0_0 = sum_t Pi_t dK_t,
// the forward's affine form run in reverse: c of rank r is the fold c <- P_q c + Z_q over
// the later ranks q = S-1 down to r+1 from c = 0. The gradients are
//   dk_t = (1 - a_t) A_t,   dg_t = a_t (1 - a_t) (A_t (K_{t-1} - k_t) + A'_t (V_{t-1} - v_t))
// with K_{-1} = K_in, where gated_scan_backward took A^0 and K_{-1} = 0. By (2) the
// corrections are
//   dk_t += (1 - a_t) R_t c_K,   dg_t += a_t (1 - a_t) R_t (c_K (K_{t-1} - k_t) + c_V (...))
// (still K_{-1} = 0), plus the t = 0 term the zero entering state left out,
//   dg_0 += a_0 (1 - a_0) (A_0 K_in + A'_0 V_in) = a_0 (dk_0 K_in + dv_0 V_in)
// with the corrected dk_0 = (1 - a_0) A_0: no division by 1 - a_0. K_in is the previous
// rank's last K as the forward left it, so the backward summary carries each rank's end
// state too, (P, Z_K, Z_V, K_end, V_end): still one all-gather.
#include "parallel/sequence_scan.hpp"

#include <vector>

#include "kernels/ops.hpp"
#include "parallel/sequence_rows.hpp"
#include "parallel/sequence_split.hpp"

namespace ratrain {
namespace {

// Where an adjoint summary (ops.hpp) keeps the chunk's end state (K_end, V_end): last.
constexpr std::int64_t kEndStateField = 3;
static_assert(kEndStateField + 2 == ops::kAdjointSummaryFields);

// This rank's pieces, for piece-major operands (count B, L, C) like `t`.
SequencePieces pieces_of(const Group& sp, SequenceSplit split, const Tensor& t) {
  return SequencePieces::of_operand(split, sp.rank(), sp.size(), t, 3, "sp_gated_scan");
}

// This rank's summary, (count, fields, B, C) in the state type (the gate's dtype and
// device) of `gate` (count B, L, C).
Tensor summary_of(const Tensor& gate, const SequencePieces& pieces, std::int64_t fields) {
  return Tensor::empty({pieces.count, fields, gate.dim(0) / pieces.count, gate.dim(2)},
                       gate.dtype(), gate.device());
}

// A (2, B, C) state in the state type of `gate`.
Tensor state_like(const Tensor& summary) {
  return Tensor::empty({2, summary.dim(2), summary.dim(3)}, summary.dtype(), summary.device());
}

// Every rank's summary (count, F, B, C) gathered: (S count, F, B, C), rank q's piece i at
// [q count + i]. The call's one collective.
Tensor gather_summaries(const Group& sp, const Tensor& summary) {
  const Shape& s = summary.shape();
  return sp.all_gather(summary).view({sp.size() * s[0], s[1], s[2], s[3]});
}

// The gathered summaries of global chunks [first, end), in chunk order: a view when they
// are consecutive in `gathered` (contiguous split), else a copy.
Tensor chunks_in_order(const Tensor& gathered, const SequencePieces& pieces, int first, int end) {
  std::vector<std::int64_t> units;
  for (int c = first; c < end; ++c) {
    const ChunkOwner owner = chunk_owner(pieces, c);
    units.push_back(std::int64_t{owner.rank} * pieces.count + owner.piece);
  }
  bool consecutive = true;
  for (std::size_t n = 1; n < units.size(); ++n) consecutive &= units[n] == units[n - 1] + 1;
  if (units.empty()) return gathered.rows(0, 0);
  if (consecutive) return gathered.rows(units.front(), units.back() + 1);
  Shape shape = gathered.shape();
  shape[0] = std::int64_t(units.size());
  Tensor ordered = Tensor::empty(shape, gathered.dtype(), gathered.device());
  for (std::size_t n = 0; n < units.size(); ++n) {
    Tensor into = ordered.rows(std::int64_t(n), std::int64_t(n) + 1);
    into.copy_from(gathered.rows(units[n], units[n] + 1));
  }
  return ordered;
}

}  // namespace

void sp_gated_scan_forward(const Group& sp, SequenceSplit split, const Tensor& g, const Tensor& k,
                           const Tensor& v, Tensor& gate, Tensor& K, Tensor& V) {
  ops::gated_scan_forward(g, k, v, gate, K, V);  // K^0, V^0: every piece from a zero state
  if (sp.size() == 1) return;
  const SequencePieces pieces = pieces_of(sp, split, g);
  // (count, 3, B, C): P, X_K, X_V of each piece
  Tensor summary = summary_of(gate, pieces, ops::kStateSummaryFields);
  for (int i = 0; i < pieces.count; ++i) {
    Tensor part = stack_part(summary, i);
    ops::gated_scan_state_summary(pieces.rows_of(gate, i), pieces.rows_of(K, i),
                                  pieces.rows_of(V, i), part);
  }
  const Tensor summaries = gather_summaries(sp, summary);  // (S count, 3, B, C)
  for (int i = 0; i < pieces.count; ++i) {
    if (pieces.chunk(i) == 0) continue;  // enters with the zero state
    Tensor state_in = state_like(summary);  // (2, B, C): K_in, V_in
    ops::gated_scan_fold(chunks_in_order(summaries, pieces, 0, pieces.chunk(i)),
                         ops::FoldOrder::first_to_last, state_in);
    Tensor K_i = pieces.rows_of(K, i), V_i = pieces.rows_of(V, i);
    ops::gated_scan_apply_carry(pieces.rows_of(gate, i), state_in, K_i, V_i);
  }
}

void sp_gated_scan_backward(const Group& sp, SequenceSplit split, const Tensor& gate,
                            const Tensor& k, const Tensor& v, const Tensor& K, const Tensor& V,
                            const Tensor& dK, const Tensor& dV, Tensor& dg, Tensor& dk,
                            Tensor& dv) {
  ops::gated_scan_backward(gate, k, v, K, V, dK, dV, dg, dk, dv);  // c = 0, K_{-1} = 0
  if (sp.size() == 1) return;
  const SequencePieces pieces = pieces_of(sp, split, gate);
  // (count, 5, B, C): P, Z_K, Z_V, K_end, V_end of each piece
  Tensor summary = summary_of(gate, pieces, ops::kAdjointSummaryFields);
  for (int i = 0; i < pieces.count; ++i) {
    Tensor part = stack_part(summary, i);
    ops::gated_scan_adjoint_summary(pieces.rows_of(gate, i), pieces.rows_of(dK, i),
                                    pieces.rows_of(dV, i), pieces.rows_of(K, i),
                                    pieces.rows_of(V, i), part);
  }
  const Tensor summaries = gather_summaries(sp, summary);  // (S count, 5, B, C)
  const std::int64_t field = summary.dim(2) * summary.dim(3);
  const Shape state_shape = {2, summary.dim(2), summary.dim(3)};
  for (int i = 0; i < pieces.count; ++i) {
    const int chunk = pieces.chunk(i);
    Tensor adjoint_in = state_like(summary);  // (2, B, C): c_K, c_V from the later chunks
    ops::gated_scan_fold(chunks_in_order(summaries, pieces, chunk + 1, pieces.chunks()),
                         ops::FoldOrder::last_to_first, adjoint_in);
    // (2, B, C): K_in, V_in, the previous chunk's end state; zero for chunk 0.
    const Tensor state_in =
        chunk > 0 ? chunks_in_order(summaries, pieces, chunk - 1, chunk)
                        .flat_view(kEndStateField * field, state_shape)
                  : Tensor::zeros(state_shape, gate.dtype(), gate.device());
    Tensor dg_i = pieces.rows_of(dg, i), dk_i = pieces.rows_of(dk, i),
           dv_i = pieces.rows_of(dv, i);
    ops::gated_scan_carry_backward(pieces.rows_of(gate, i), pieces.rows_of(k, i),
                                   pieces.rows_of(v, i), pieces.rows_of(K, i),
                                   pieces.rows_of(V, i), state_in, adjoint_in, dg_i, dk_i,
                                   dv_i);
  }
}

}  // namespace ratrain
