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

#include "kernels/ops.hpp"

namespace ratrain {
namespace {

// Where an adjoint summary (ops.hpp) keeps the chunk's end state (K_end, V_end): last.
constexpr std::int64_t kEndStateField = 3;
static_assert(kEndStateField + 2 == ops::kAdjointSummaryFields);

// A (fields, B, C) tensor in the state type (the gate's dtype and device) of `gate` (B, Tc, C).
Tensor state_fields(const Tensor& gate, std::int64_t fields) {
  return Tensor::empty({fields, gate.dim(0), gate.dim(2)}, gate.dtype(), gate.device());
}

// Every rank's (fields, B, C) summary, (S, fields, B, C), rank q's at [q]: the call's one
// collective.
Tensor gather_summaries(const Group& sp, const Tensor& summary) {
  const Shape& s = summary.shape();
  return sp.all_gather(summary).view({sp.size(), s[0], s[1], s[2]});
}

}  // namespace

void sp_gated_scan_forward(const Group& sp, const Tensor& g, const Tensor& k, const Tensor& v,
                           Tensor& gate, Tensor& K, Tensor& V) {
  ops::gated_scan_forward(g, k, v, gate, K, V);  // K^0, V^0: from a zero state
  if (sp.size() == 1) return;
  Tensor summary = state_fields(gate, ops::kStateSummaryFields);  // (3, B, C): P, X_K, X_V
  ops::gated_scan_state_summary(gate, K, V, summary);
  const Tensor summaries = gather_summaries(sp, summary);  // (S, 3, B, C)
  if (sp.rank() == 0) return;                              // enters with the zero state
  Tensor state_in = state_fields(gate, 2);                 // (2, B, C): K_in, V_in
  ops::gated_scan_fold(summaries.rows(0, sp.rank()), ops::FoldOrder::first_to_last, state_in);
  ops::gated_scan_apply_carry(gate, state_in, K, V);
}

void sp_gated_scan_backward(const Group& sp, const Tensor& gate, const Tensor& k, const Tensor& v,
                            const Tensor& K, const Tensor& V, const Tensor& dK, const Tensor& dV,
                            Tensor& dg, Tensor& dk, Tensor& dv) {
  ops::gated_scan_backward(gate, k, v, K, V, dK, dV, dg, dk, dv);  // c = 0, K_{-1} = 0
  if (sp.size() == 1) return;
  // (5, B, C): P, Z_K, Z_V, K_end, V_end
  Tensor summary = state_fields(gate, ops::kAdjointSummaryFields);
  ops::gated_scan_adjoint_summary(gate, dK, dV, K, V, summary);
  const Tensor summaries = gather_summaries(sp, summary);  // (S, 5, B, C)
  const int rank = sp.rank();
  Tensor adjoint_in = state_fields(gate, 2);  // (2, B, C): c_K, c_V
  ops::gated_scan_fold(summaries.rows(rank + 1, sp.size()), ops::FoldOrder::last_to_first,
                       adjoint_in);
  // (2, B, C): K_in, V_in, the previous rank's end state; zero on rank 0.
  const Shape state_shape = {2, gate.dim(0), gate.dim(2)};
  const std::int64_t field = gate.dim(0) * gate.dim(2);
  const Tensor state_in =
      rank > 0 ? summaries.rows(rank - 1, rank).flat_view(kEndStateField * field, state_shape)
               : Tensor::zeros(state_shape, gate.dtype(), gate.device());
  ops::gated_scan_carry_backward(gate, k, v, K, V, state_in, adjoint_in, dg, dk, dv);
}

}  // namespace ratrain
