// The gated recurrence across chunks of T (ops.hpp, after gated_scan_backward; the
// algorithm and its derivation are in parallel/sequence_scan.cpp). Per (batch, channel),
// a_t the gate of row t of a chunk of Tc rows, the prefix product Pi_t = prod_{s<=t} a_s and
// the suffix product R_t = prod_{s>t} a_s:
//   state summary    [Pi_{Tc-1}, K_{Tc-1}, V_{Tc-1}]
//   adjoint summary  [Pi_{Tc-1}, sum_t Pi_t dK_t, sum_t Pi_t dV_t, K_{Tc-1}, V_{Tc-1}]
//   fold             s <- P s + X over the chunks' maps, from s = 0
//   apply carry      K_t += Pi_t K_in,  V_t += Pi_t V_in
//   carry backward   with (c_K, c_V) = adjoint_in, R_t c is the adjoint that the zero-carry
//                    backward missed at row t:
//     dk_t += (1 - a_t) R_t c_K,  dv_t += (1 - a_t) R_t c_V,
//     dg_t += a_t (1 - a_t) R_t (c_K (K_{t-1} - k_t) + c_V (V_{t-1} - v_t))  (K_{-1} = 0 here,
//             as in gated_scan_backward), then the entering state's term of dg_0, which
//             gated_scan_backward took as zero: dg_0 += a_0 (dk_0 K_in + dv_0 V_in) with the
//             corrected dk_0 = (1 - a_0) A_0.
// Parallel over the batch; each walks T with unit-stride channel loops, keeping its running
// products in a (C) array. Summaries and states are (F, B, C): field f of batch b starts at
// (f B + b) C.
#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

// Both summaries: the gate product, with dK, dV the adjoint sums, then the end state.
template <typename T>
void summarise(const Tensor& gate, const Tensor* dK, const Tensor* dV, const Tensor& K,
               const Tensor& V, Tensor& summary) {
  const std::int64_t batch = gate.dim(0), rows = gate.dim(1), c = gate.dim(2);
  const std::int64_t field = batch * c;       // elements of one summary field
  const std::int64_t end_field = dK ? 3 : 1;  // where the end state (K, V) goes
  const T* as = gate.data<T>();
  const T* dKs = dK ? dK->data<T>() : nullptr;
  const T* dVs = dV ? dV->data<T>() : nullptr;
  T* out = summary.data<T>();
#pragma omp parallel for
  for (std::int64_t b = 0; b < batch; ++b) {
    // The output fields serve as the accumulators: (C) each.
    T* product = out + b * c;
    T* adjoint_k = out + field + b * c;
    T* adjoint_v = out + 2 * field + b * c;
    std::fill(product, product + c, T(1));
    if (dKs) {
      std::fill(adjoint_k, adjoint_k + c, T(0));
      std::fill(adjoint_v, adjoint_v + c, T(0));
    }
    for (std::int64_t t = 0; t < rows; ++t) {
      const std::int64_t row = (b * rows + t) * c;
      for (std::int64_t j = 0; j < c; ++j) {
        product[j] *= as[row + j];
        if (dKs) {
          adjoint_k[j] += product[j] * dKs[row + j];
          adjoint_v[j] += product[j] * dVs[row + j];
        }
      }
    }
    const std::int64_t last = (b * rows + rows - 1) * c;
    std::copy_n(K.data<T>() + last, c, out + end_field * field + b * c);
    std::copy_n(V.data<T>() + last, c, out + (end_field + 1) * field + b * c);
  }
}

// Batch b's (C) rows of the two fields of a (2, B, C) state: K and V, or their adjoints.
template <typename T>
struct PairRows {
  const T* k;
  const T* v;
};
template <typename T>
PairRows<T> pair_rows(const Tensor& pair, std::int64_t b) {
  const T* first = pair.data<T>() + b * pair.dim(2);
  return {first, first + pair.dim(1) * pair.dim(2)};
}

}  // namespace

template <typename T>
void gated_scan_state_summary(const Tensor& gate, const Tensor& K, const Tensor& V,
                              Tensor& summary) {
  summarise<T>(gate, nullptr, nullptr, K, V, summary);
}

template <typename T>
void gated_scan_adjoint_summary(const Tensor& gate, const Tensor& dK, const Tensor& dV,
                                const Tensor& K, const Tensor& V, Tensor& summary) {
  summarise<T>(gate, &dK, &dV, K, V, summary);
}

template <typename T>
void gated_scan_fold(const Tensor& summaries, ops::FoldOrder order, Tensor& state) {
  const std::int64_t n = summaries.dim(0), fields = summaries.dim(1);
  const std::int64_t field = state.dim(1) * state.dim(2);  // B C
  T* k_state = state.data<T>();
  T* v_state = k_state + field;
  std::fill(k_state, k_state + 2 * field, T(0));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t chunk = order == ops::FoldOrder::first_to_last ? i : n - 1 - i;
    const T* map = summaries.data<T>() + chunk * fields * field;  // P, X_K, X_V, ...
    for (std::int64_t e = 0; e < field; ++e) {
      k_state[e] = map[e] * k_state[e] + map[field + e];
      v_state[e] = map[e] * v_state[e] + map[2 * field + e];
    }
  }
}

template <typename T>
void gated_scan_apply_carry(const Tensor& gate, const Tensor& state_in, Tensor& K, Tensor& V) {
  const std::int64_t batch = gate.dim(0), rows = gate.dim(1), c = gate.dim(2);
  const T* as = gate.data<T>();
  T* Ks = K.data<T>();
  T* Vs = V.data<T>();
#pragma omp parallel for
  for (std::int64_t b = 0; b < batch; ++b) {
    const PairRows<T> in = pair_rows<T>(state_in, b);
    std::vector<T> product(c, T(1));  // Pi_t
    for (std::int64_t t = 0; t < rows; ++t) {
      const std::int64_t row = (b * rows + t) * c;
      for (std::int64_t j = 0; j < c; ++j) {
        product[j] *= as[row + j];
        Ks[row + j] += product[j] * in.k[j];
        Vs[row + j] += product[j] * in.v[j];
      }
    }
  }
}

template <typename T>
void gated_scan_carry_backward(const Tensor& gate, const Tensor& k, const Tensor& v,
                               const Tensor& K, const Tensor& V, const Tensor& state_in,
                               const Tensor& adjoint_in, Tensor& dg, Tensor& dk, Tensor& dv) {
  const std::int64_t batch = gate.dim(0), rows = gate.dim(1), c = gate.dim(2);
  const T* as = gate.data<T>();
  const T* ks = k.data<T>();
  const T* vs = v.data<T>();
  const T* Ks = K.data<T>();
  const T* Vs = V.data<T>();
  T* dgs = dg.data<T>();
  T* dks = dk.data<T>();
  T* dvs = dv.data<T>();
#pragma omp parallel for
  for (std::int64_t b = 0; b < batch; ++b) {
    const PairRows<T> in = pair_rows<T>(state_in, b), carry = pair_rows<T>(adjoint_in, b);
    std::vector<T> suffix(c, T(1));  // R_t
    for (std::int64_t t = rows - 1; t >= 0; --t) {
      const std::int64_t row = (b * rows + t) * c;
      const std::int64_t prev = row - c;  // row of t - 1, read only when t > 0
      for (std::int64_t j = 0; j < c; ++j) {
        const T a = as[row + j];
        const T missed_k = suffix[j] * carry.k[j];
        const T missed_v = suffix[j] * carry.v[j];
        const T k_prev = t > 0 ? Ks[prev + j] : T(0);
        const T v_prev = t > 0 ? Vs[prev + j] : T(0);
        dks[row + j] += (T(1) - a) * missed_k;
        dvs[row + j] += (T(1) - a) * missed_v;
        dgs[row + j] += (missed_k * (k_prev - ks[row + j]) + missed_v * (v_prev - vs[row + j])) *
                        a * (T(1) - a);
        suffix[j] *= a;
      }
    }
    const std::int64_t first = b * rows * c;
    for (std::int64_t j = 0; j < c; ++j)
      dgs[first + j] += as[first + j] * (dks[first + j] * in.k[j] + dvs[first + j] * in.v[j]);
  }
}

#define RATRAIN_INSTANTIATE_GATED_SCAN_CARRY(T)                                                    \
  template void gated_scan_state_summary<T>(const Tensor&, const Tensor&, const Tensor&, Tensor&); \
  template void gated_scan_adjoint_summary<T>(const Tensor&, const Tensor&, const Tensor&,         \
                                              const Tensor&, const Tensor&, Tensor&);              \
  template void gated_scan_fold<T>(const Tensor&, ops::FoldOrder, Tensor&);                        \
  template void gated_scan_apply_carry<T>(const Tensor&, const Tensor&, Tensor&, Tensor&);         \
  template void gated_scan_carry_backward<T>(const Tensor&, const Tensor&, const Tensor&,          \
                                             const Tensor&, const Tensor&, const Tensor&,          \
                                             const Tensor&, Tensor&, Tensor&, Tensor&);
RATRAIN_INSTANTIATE_GATED_SCAN_CARRY(float)
RATRAIN_INSTANTIATE_GATED_SCAN_CARRY(double)
#undef RATRAIN_INSTANTIATE_GATED_SCAN_CARRY

}  // namespace ratrain::cpu
