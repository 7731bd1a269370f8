// Gated linear recurrence over keys and values (RATPLUS.md step 4).
// g, k, v, gate, K, V and their gradients: (B, T, C), scanned along T independently
// per (batch, channel), zero initial state, one gate for both K and V:
//   K_t = a_t K_{t-1} + (1 - a_t) k_t,  V_t = a_t V_{t-1} + (1 - a_t) v_t,  a = sigmoid(g)
// The state is kept in T (fp32 for float tensors, as the model specifies).
//
// Backward is the reverse-time adjoint recurrence. With total adjoints
//   A^K_t = dK_t + a_{t+1} A^K_{t+1}   (likewise A^V),
// dk_t = (1 - a_t) A^K_t, dv_t = (1 - a_t) A^V_t and
//   dg_t = (A^K_t (K_{t-1} - k_t) + A^V_t (V_{t-1} - v_t)) a_t (1 - a_t).
// Parallel over (batch, chunk of kChunk channels); a chunk keeps its state in a local
// array and walks T with unit-stride channel loops.
#include <algorithm>

#include "kernels/cpu/cpu.hpp"
#include "kernels/cpu/math.hpp"

namespace ratrain::cpu {
namespace {
constexpr std::int64_t kChunk = 64;  // channels per parallel work item
}  // namespace

template <typename T>
void gated_scan_forward(const Tensor& g, const Tensor& k, const Tensor& v, Tensor& gate,
                        Tensor& K, Tensor& V) {
  const std::int64_t batch = g.dim(0), seq = g.dim(1), c = g.dim(2);
  const std::int64_t chunks = (c + kChunk - 1) / kChunk;
  const T* gs = g.data<T>();
  const T* ks = k.data<T>();
  const T* vs = v.data<T>();
  T* as = gate.data<T>();
  T* Ks = K.data<T>();
  T* Vs = V.data<T>();
#pragma omp parallel for collapse(2)
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
      const std::int64_t j0 = chunk * kChunk, width = std::min(kChunk, c - j0);
      T k_state[kChunk] = {}, v_state[kChunk] = {};  // K_{t-1}, V_{t-1}
      for (std::int64_t t = 0; t < seq; ++t) {
        const std::int64_t row = (b * seq + t) * c + j0;
        for (std::int64_t j = 0; j < width; ++j) {
          const T a = sigmoid(gs[row + j]);
          k_state[j] = a * k_state[j] + (T(1) - a) * ks[row + j];
          v_state[j] = a * v_state[j] + (T(1) - a) * vs[row + j];
          as[row + j] = a;
          Ks[row + j] = k_state[j];
          Vs[row + j] = v_state[j];
        }
      }
    }
  }
}

template <typename T>
void gated_scan_backward(const Tensor& gate, const Tensor& k, const Tensor& v, const Tensor& K,
                         const Tensor& V, const Tensor& dK, const Tensor& dV, Tensor& dg,
                         Tensor& dk, Tensor& dv) {
  const std::int64_t batch = gate.dim(0), seq = gate.dim(1), c = gate.dim(2);
  const std::int64_t chunks = (c + kChunk - 1) / kChunk;
  const T* as = gate.data<T>();
  const T* ks = k.data<T>();
  const T* vs = v.data<T>();
  const T* Ks = K.data<T>();
  const T* Vs = V.data<T>();
  const T* dKs = dK.data<T>();
  const T* dVs = dV.data<T>();
  T* dgs = dg.data<T>();
  T* dks = dk.data<T>();
  T* dvs = dv.data<T>();
#pragma omp parallel for collapse(2)
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
      const std::int64_t j0 = chunk * kChunk, width = std::min(kChunk, c - j0);
      T k_carry[kChunk] = {}, v_carry[kChunk] = {};  // a_{t+1} A_{t+1}
      for (std::int64_t t = seq - 1; t >= 0; --t) {
        const std::int64_t row = (b * seq + t) * c + j0;
        const std::int64_t prev = row - c;  // row of t - 1, read only when t > 0
        for (std::int64_t j = 0; j < width; ++j) {
          const T a = as[row + j];
          const T k_adj = dKs[row + j] + k_carry[j];
          const T v_adj = dVs[row + j] + v_carry[j];
          const T k_prev = t > 0 ? Ks[prev + j] : T(0);
          const T v_prev = t > 0 ? Vs[prev + j] : T(0);
          dks[row + j] = (T(1) - a) * k_adj;
          dvs[row + j] = (T(1) - a) * v_adj;
          dgs[row + j] = (k_adj * (k_prev - ks[row + j]) + v_adj * (v_prev - vs[row + j])) * a *
                         (T(1) - a);
          k_carry[j] = a * k_adj;
          v_carry[j] = a * v_adj;
        }
      }
    }
  }
}

template void gated_scan_forward<float>(const Tensor&, const Tensor&, const Tensor&, Tensor&,
                                        Tensor&, Tensor&);
template void gated_scan_forward<double>(const Tensor&, const Tensor&, const Tensor&, Tensor&,
                                         Tensor&, Tensor&);
template void gated_scan_backward<float>(const Tensor&, const Tensor&, const Tensor&,
                                         const Tensor&, const Tensor&, const Tensor&,
                                         const Tensor&, Tensor&, Tensor&, Tensor&);
template void gated_scan_backward<double>(const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, Tensor&, Tensor&, Tensor&);

}  // namespace ratrain::cpu
