// The loops of the CPU reference attention, shared by the op over the whole sequence
// (attention.cpp) and the op over an explicit key set (attention_keys.cpp). Internal to
// kernels/cpu.
//
// Queries are the rows t of q (B, Tq, H, dh) at global positions q_begin + t; keys are
// the rows n of k, v (B, Tk, H, dh). A key enumerator `for_keys(i, visit)` calls
// visit(n) for every key row visible to the query at global position i, in increasing
// position order; it is what distinguishes the two ops. Scale 1/sqrt(dh).
// Row (b, t, h) of a (B, T, H, dh) tensor starts at ((b*T + t)*H + h)*dh.
//
// Forward, per query (b, h, i): one pass over the visible keys with an online softmax in
// double: running max m, running sum l and output accumulator acc (dh) are rescaled by
// exp(m_old - m_new) whenever the max grows. out = acc / l, lse = m + log l. A query
// that sees no key (possible only over a partial key set) gets out = 0, lse = -inf,
// the identity of the log-sum-exp merge.
//
// Backward (FlashAttention-2 style), with delta_i = dout_i . out_i and the saved lse:
//   p_ij = exp(s_ij - lse_i), dv_j += p_ij dout_i, ds_ij = p_ij (dout_i . v_j - delta_i),
//   dq_i += scale ds_ij k_j, dk_j += scale ds_ij q_i.
// Scores, exponentials and delta are computed in double; the gradient sums accumulate
// in T, the dtype of dq, dk, dv. dk_j and dv_j receive terms from many queries, so work
// is split by (b, h) pair: one thread owns the (b, h) slices of dq, dk and dv and no
// two threads write one element. Scratch per thread: O(dh).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/tensor.hpp"

namespace ratrain::cpu::attention_detail {

// Offsets into (B, T, H, dh) and (B, H, T) tensors of one sequence length T.
struct HeadLayout {
  std::int64_t batch, seq, heads, dh;
  // Offset of row (b, t, h) in a (B, T, H, dh) tensor.
  std::int64_t row(std::int64_t b, std::int64_t t, std::int64_t h) const {
    return ((b * seq + t) * heads + h) * dh;
  }
  // Offset of (b, h, t) in a (B, H, T) tensor.
  std::int64_t lse_at(std::int64_t b, std::int64_t h, std::int64_t t) const {
    return (b * heads + h) * seq + t;
  }
};

// The layout of a (B, T, H, dh) tensor.
inline HeadLayout layout_of(const Tensor& t) { return {t.dim(0), t.dim(1), t.dim(2), t.dim(3)}; }

// `omp simd` lets the compiler split the sum into vector lanes (a reassociation plain
// -O3 may not do), several times faster at dh = 32..128; the order is fixed per build.
template <typename T>
double dot(const T* a, const T* b, std::int64_t n) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t c = 0; c < n; ++c) sum += double(a[c]) * double(b[c]);
  return sum;
}

// Whether the backward overwrites dq, dk, dv or adds to them.
enum class GradMode { overwrite, accumulate };

template <typename T, typename ForKeys>
void forward_rows(const Tensor& q, std::int64_t q_begin, const Tensor& k, const Tensor& v,
                  const ForKeys& for_keys, Tensor& out, Tensor& lse) {
  const HeadLayout q_layout = layout_of(q), k_layout = layout_of(k);
  const double scale = 1.0 / std::sqrt(double(q_layout.dh));
  const T* qs = q.data<T>();
  const T* ks = k.data<T>();
  const T* vs = v.data<T>();
  T* os = out.data<T>();
  T* lses = lse.data<T>();
  const std::int64_t dh = q_layout.dh;
  const std::int64_t queries = q_layout.batch * q_layout.heads * q_layout.seq;
#pragma omp parallel
  {
    std::vector<double> acc(static_cast<std::size_t>(dh));  // (dh) unnormalised output
    // Causal rows differ in cost, hence dynamic scheduling.
#pragma omp for schedule(dynamic, 32)
    for (std::int64_t r = 0; r < queries; ++r) {
      const std::int64_t t = r % q_layout.seq, bh = r / q_layout.seq;
      const std::int64_t b = bh / q_layout.heads, h = bh % q_layout.heads;
      const T* qi = qs + q_layout.row(b, t, h);
      double m = -std::numeric_limits<double>::infinity(), l = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for_keys(q_begin + t, [&](std::int64_t n) {
        const double s = scale * dot(qi, ks + k_layout.row(b, n, h), dh);
        if (s > m) {
          const double rescale = std::exp(m - s);  // 0 for the first key
          l *= rescale;
          for (double& a : acc) a *= rescale;
          m = s;
        }
        const double p = std::exp(s - m);
        l += p;
        const T* vn = vs + k_layout.row(b, n, h);
        for (std::int64_t c = 0; c < dh; ++c) acc[c] += p * double(vn[c]);
      });
      T* oi = os + q_layout.row(b, t, h);
      const bool saw_keys = l > 0;
      for (std::int64_t c = 0; c < dh; ++c) oi[c] = saw_keys ? T(acc[c] / l) : T(0);
      lses[q_layout.lse_at(b, h, t)] = saw_keys ? T(m + std::log(l)) : T(m);  // m = -inf
    }
  }
}

template <typename T, typename ForKeys>
void backward_rows(const Tensor& q, std::int64_t q_begin, const Tensor& k, const Tensor& v,
                   const Tensor& out, const Tensor& lse, const Tensor& dout,
                   const ForKeys& for_keys, GradMode mode, Tensor& dq, Tensor& dk, Tensor& dv) {
  const HeadLayout q_layout = layout_of(q), k_layout = layout_of(k);
  const double scale = 1.0 / std::sqrt(double(q_layout.dh));
  const T* qs = q.data<T>();
  const T* ks = k.data<T>();
  const T* vs = v.data<T>();
  const T* os = out.data<T>();
  const T* lses = lse.data<T>();
  const T* dos = dout.data<T>();
  T* dqs = dq.data<T>();
  T* dks = dk.data<T>();
  T* dvs = dv.data<T>();
  const std::int64_t dh = q_layout.dh;
  const std::int64_t pairs = q_layout.batch * q_layout.heads;
#pragma omp parallel
  {
    std::vector<T> dq_acc(static_cast<std::size_t>(dh));  // (dh) dq of one query
    // Batch-fastest order: threads running side by side take different samples, whose
    // dk, dv slices lie T*H*dh apart. Neighbouring heads of one sample interleave row by
    // row, and two threads writing them in lockstep ran slower than one thread (measured
    // on 2 cores; with B = 1 that remains the case).
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t hb = 0; hb < pairs; ++hb) {
      const std::int64_t b = hb % q_layout.batch, h = hb / q_layout.batch;
      if (mode == GradMode::overwrite) {
        for (std::int64_t n = 0; n < k_layout.seq; ++n) {
          std::fill_n(dks + k_layout.row(b, n, h), dh, T(0));
          std::fill_n(dvs + k_layout.row(b, n, h), dh, T(0));
        }
      }
      for (std::int64_t t = 0; t < q_layout.seq; ++t) {
        const T* qi = qs + q_layout.row(b, t, h);
        const T* doi = dos + q_layout.row(b, t, h);
        const double delta = dot(doi, os + q_layout.row(b, t, h), dh);
        const double lse_i = lses[q_layout.lse_at(b, h, t)];
        std::fill(dq_acc.begin(), dq_acc.end(), T(0));
        for_keys(q_begin + t, [&](std::int64_t n) {
          const T* kn = ks + k_layout.row(b, n, h);
          const T* vn = vs + k_layout.row(b, n, h);
          T* dkn = dks + k_layout.row(b, n, h);
          T* dvn = dvs + k_layout.row(b, n, h);
          const double p = std::exp(scale * dot(qi, kn, dh) - lse_i);
          const double ds_scaled = scale * p * (dot(doi, vn, dh) - delta);
          // Accumulate in T like the dk, dv outputs themselves: keeps the lanes free of
          // conversions. The six rows are distinct (outputs never alias inputs).
          const T p_t = T(p), ds_t = T(ds_scaled);
#pragma omp simd
          for (std::int64_t c = 0; c < dh; ++c) {
            dvn[c] += p_t * doi[c];
            dq_acc[c] += ds_t * kn[c];
            dkn[c] += ds_t * qi[c];
          }
        });
        T* dqi = dqs + q_layout.row(b, t, h);
        if (mode == GradMode::overwrite)
          std::copy(dq_acc.begin(), dq_acc.end(), dqi);
        else
          for (std::int64_t c = 0; c < dh; ++c) dqi[c] += dq_acc[c];
      }
    }
  }
}

}  // namespace ratrain::cpu::attention_detail
