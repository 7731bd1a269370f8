// Softmax attention under the RAT+ visibility rule, flash-style (no T x T buffer).
// q, k, v, out, dout, dq, dk, dv: (B, T, H, dh); lse (B, H, T). Scale 1/sqrt(dh).
// Row (b, t, h) of a (B, T, H, dh) tensor starts at ((b*T + t)*H + h)*dh.
//
// Forward, per query (b, h, i): one pass over the visible keys (for_each_visible_key,
// O(T/D + W + P) of them when sparse) with an online softmax in double: running max m,
// running sum l and output accumulator acc (dh) are rescaled by exp(m_old - m_new)
// whenever the max grows. out = acc / l, lse = m + log l. Every query sees at least
// itself, so l > 0.
//
// Backward (FlashAttention-2 style), with delta_i = dout_i . out_i and the saved lse:
//   p_ij = exp(s_ij - lse_i), dv_j += p_ij dout_i, ds_ij = p_ij (dout_i . v_j - delta_i),
//   dq_i += scale ds_ij k_j, dk_j += scale ds_ij q_i.
// Scores, exponentials and delta are computed in double; the gradient sums accumulate
// in T, the dtype of dq, dk, dv. dk_j and dv_j receive terms from many queries, so work
// is split by (b, h) pair: one thread owns the (b, h) slices of dq, dk and dv and no
// two threads write one element. Scratch per thread: O(dh).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

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

HeadLayout layout_of(const Tensor& q) { return {q.dim(0), q.dim(1), q.dim(2), q.dim(3)}; }

// `omp simd` lets the compiler split the sum into vector lanes (a reassociation plain
// -O3 may not do), several times faster at dh = 32..128; the order is fixed per build.
template <typename T>
double dot(const T* a, const T* b, std::int64_t n) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t c = 0; c < n; ++c) sum += double(a[c]) * double(b[c]);
  return sum;
}

}  // namespace

template <typename T>
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                       Tensor& out, Tensor& lse) {
  const HeadLayout shape = layout_of(q);
  const double scale = 1.0 / std::sqrt(double(shape.dh));
  const T* qs = q.data<T>();
  const T* ks = k.data<T>();
  const T* vs = v.data<T>();
  T* os = out.data<T>();
  T* lses = lse.data<T>();
  const std::int64_t queries = shape.batch * shape.heads * shape.seq;
#pragma omp parallel
  {
    std::vector<double> acc(static_cast<std::size_t>(shape.dh));  // (dh) unnormalised output
    // Causal rows differ in cost, hence dynamic scheduling.
#pragma omp for schedule(dynamic, 32)
    for (std::int64_t r = 0; r < queries; ++r) {
      const std::int64_t i = r % shape.seq, bh = r / shape.seq;
      const std::int64_t b = bh / shape.heads, h = bh % shape.heads;
      const T* qi = qs + shape.row(b, i, h);
      double m = -std::numeric_limits<double>::infinity(), l = 0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for_each_visible_key(rule, i, [&](std::int64_t j) {
        const double s = scale * dot(qi, ks + shape.row(b, j, h), shape.dh);
        if (s > m) {
          const double rescale = std::exp(m - s);  // 0 for the first key
          l *= rescale;
          for (double& a : acc) a *= rescale;
          m = s;
        }
        const double p = std::exp(s - m);
        l += p;
        const T* vj = vs + shape.row(b, j, h);
        for (std::int64_t c = 0; c < shape.dh; ++c) acc[c] += p * double(vj[c]);
      });
      T* oi = os + shape.row(b, i, h);
      for (std::int64_t c = 0; c < shape.dh; ++c) oi[c] = T(acc[c] / l);
      lses[shape.lse_at(b, h, i)] = T(m + std::log(l));
    }
  }
}

template <typename T>
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Sparsity& rule, Tensor& dq,
                        Tensor& dk, Tensor& dv) {
  const HeadLayout shape = layout_of(q);
  const double scale = 1.0 / std::sqrt(double(shape.dh));
  const T* qs = q.data<T>();
  const T* ks = k.data<T>();
  const T* vs = v.data<T>();
  const T* os = out.data<T>();
  const T* lses = lse.data<T>();
  const T* dos = dout.data<T>();
  T* dqs = dq.data<T>();
  T* dks = dk.data<T>();
  T* dvs = dv.data<T>();
  const std::int64_t pairs = shape.batch * shape.heads;
#pragma omp parallel
  {
    std::vector<T> dq_acc(static_cast<std::size_t>(shape.dh));  // (dh) dq of one query
    // Batch-fastest order: threads running side by side take different samples, whose
    // dk, dv slices lie T*H*dh apart. Neighbouring heads of one sample interleave row by
    // row, and two threads writing them in lockstep ran slower than one thread (measured
    // on 2 cores; with B = 1 that remains the case).
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t hb = 0; hb < pairs; ++hb) {
      const std::int64_t b = hb % shape.batch, h = hb / shape.batch;
      for (std::int64_t j = 0; j < shape.seq; ++j) {
        std::fill_n(dks + shape.row(b, j, h), shape.dh, T(0));
        std::fill_n(dvs + shape.row(b, j, h), shape.dh, T(0));
      }
      for (std::int64_t i = 0; i < shape.seq; ++i) {
        const T* qi = qs + shape.row(b, i, h);
        const T* doi = dos + shape.row(b, i, h);
        const double delta = dot(doi, os + shape.row(b, i, h), shape.dh);
        const double lse_i = lses[shape.lse_at(b, h, i)];
        std::fill(dq_acc.begin(), dq_acc.end(), T(0));
        for_each_visible_key(rule, i, [&](std::int64_t j) {
          const T* kj = ks + shape.row(b, j, h);
          const T* vj = vs + shape.row(b, j, h);
          T* dkj = dks + shape.row(b, j, h);
          T* dvj = dvs + shape.row(b, j, h);
          const double p = std::exp(scale * dot(qi, kj, shape.dh) - lse_i);
          const double ds_scaled = scale * p * (dot(doi, vj, shape.dh) - delta);
          // Accumulate in T like the dk, dv outputs themselves: keeps the lanes free of
          // conversions. The six rows are distinct (outputs never alias inputs).
          const T p_t = T(p), ds_t = T(ds_scaled);
#pragma omp simd
          for (std::int64_t c = 0; c < shape.dh; ++c) {
            dvj[c] += p_t * doi[c];
            dq_acc[c] += ds_t * kj[c];
            dkj[c] += ds_t * qi[c];
          }
        });
        T* dqi = dqs + shape.row(b, i, h);
        std::copy(dq_acc.begin(), dq_acc.end(), dqi);
      }
    }
  }
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
