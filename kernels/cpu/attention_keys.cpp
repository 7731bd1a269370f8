// Attention of a block of queries over an explicit key set, and the log-sum-exp merge of
// two partial results: the compute of sequence-parallel attention
// (parallel/sequence_attention.hpp), where a rank attends over keys assembled from
// several ranks (dilated rule) or over one ring block at a time (dense rule).
//
// The loops are those of the whole-sequence op (attention_rows.hpp); only the key
// enumerator differs: key row n sits at global position key_positions[n] and is visited
// when the RAT+ rule holds between the query's and the key's global positions. Because
// positions increase, the scan stops at the first key after the query. O(Tk) per query:
// this is the reference, not the fast path.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/attention_rows.hpp"
#include "kernels/cpu/cpu.hpp"

namespace ratrain::cpu {
namespace {

// The key enumerator of attention_rows.hpp for an explicit, increasing key set.
auto listed_keys_of(const Tensor& key_positions, const Sparsity& rule) {
  const std::int32_t* positions = key_positions.data<std::int32_t>();
  const std::int64_t count = key_positions.numel();
  return [=](std::int64_t i, const auto& visit) {
    for (std::int64_t n = 0; n < count && positions[n] <= i; ++n)
      if (is_visible(rule, i, positions[n])) visit(n);
  };
}

}  // namespace

template <typename T>
void attention_forward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                            const Tensor& v, const Tensor& key_positions, const Sparsity& rule,
                            Tensor& out, Tensor& lse) {
  attention_detail::forward_rows<T>(q, q_begin, k, v, listed_keys_of(key_positions, rule), out,
                                    lse);
}

template <typename T>
void attention_backward_keys(const Tensor& q, std::int64_t q_begin, const Tensor& k,
                             const Tensor& v, const Tensor& key_positions, const Tensor& out,
                             const Tensor& lse, const Tensor& dout, const Sparsity& rule,
                             Tensor& dq, Tensor& dk, Tensor& dv) {
  attention_detail::backward_rows<T>(q, q_begin, k, v, out, lse, dout,
                                     listed_keys_of(key_positions, rule),
                                     attention_detail::GradMode::accumulate, dq, dk, dv);
}

// Per query row: weights relative to the larger lse keep both exponentials <= 1.
template <typename T>
void attention_merge(Tensor& out, Tensor& lse, const Tensor& part_out, const Tensor& part_lse) {
  const attention_detail::HeadLayout shape = attention_detail::layout_of(out);
  T* os = out.data<T>();
  T* lses = lse.data<T>();
  const T* part_os = part_out.data<T>();
  const T* part_lses = part_lse.data<T>();
  for (std::int64_t b = 0; b < shape.batch; ++b)
    for (std::int64_t h = 0; h < shape.heads; ++h)
      for (std::int64_t t = 0; t < shape.seq; ++t) {
        T& lse_t = lses[shape.lse_at(b, h, t)];
        const double own = lse_t, part = part_lses[shape.lse_at(b, h, t)];
        const double m = std::max(own, part);
        if (m == -std::numeric_limits<double>::infinity()) continue;  // both parts empty
        const double own_weight = std::exp(own - m), part_weight = std::exp(part - m);
        const double total = own_weight + part_weight;
        T* o = os + shape.row(b, t, h);
        const T* po = part_os + shape.row(b, t, h);
        for (std::int64_t c = 0; c < shape.dh; ++c)
          o[c] = T((own_weight * double(o[c]) + part_weight * double(po[c])) / total);
        lse_t = T(m + std::log(total));
      }
}

template void attention_forward_keys<float>(const Tensor&, std::int64_t, const Tensor&,
                                            const Tensor&, const Tensor&, const Sparsity&,
                                            Tensor&, Tensor&);
template void attention_forward_keys<double>(const Tensor&, std::int64_t, const Tensor&,
                                             const Tensor&, const Tensor&, const Sparsity&,
                                             Tensor&, Tensor&);
template void attention_backward_keys<float>(const Tensor&, std::int64_t, const Tensor&,
                                             const Tensor&, const Tensor&, const Tensor&,
                                             const Tensor&, const Tensor&, const Sparsity&,
                                             Tensor&, Tensor&, Tensor&);
template void attention_backward_keys<double>(const Tensor&, std::int64_t, const Tensor&,
                                              const Tensor&, const Tensor&, const Tensor&,
                                              const Tensor&, const Tensor&, const Sparsity&,
                                              Tensor&, Tensor&, Tensor&);
template void attention_merge<float>(Tensor&, Tensor&, const Tensor&, const Tensor&);
template void attention_merge<double>(Tensor&, Tensor&, const Tensor&, const Tensor&);

}  // namespace ratrain::cpu
