#include "model/rat_block.hpp"

#include "kernels/ops.hpp"
#include "parallel/sequence_attention.hpp"
#include "parallel/sequence_scan.hpp"
#include "parallel/sequence_split.hpp"

namespace ratrain {
namespace {

// The block's tensors as the sequence-parallel calls take them: piece-major, the N rows
// being (count, B, L) (parallel/sequence_split.hpp), so piece i is the batch rows
// [i B, (i + 1) B) of each view. With one piece (contiguous, or no sp) that is (B, Tc).
struct PieceViews {
  PieceViews(const BlockDims& block_dims, SequenceSplit split, const Group& sp)
      : dims(block_dims), pieces(split, sp.rank(), sp.size(), block_dims.seq) {}
  std::int64_t batch_rows() const { return pieces.count * dims.batch; }
  Tensor heads(const Tensor& t) const {  // (N, I) -> (count B, L, H, dh)
    return t.view({batch_rows(), pieces.length, dims.heads, dims.head_dim});
  }
  Tensor seq(const Tensor& t) const {  // (N, I) -> (count B, L, I)
    return t.view({batch_rows(), pieces.length, dims.inner()});
  }
  Tensor lse(const Tensor& t) const {  // (B, H, Tc) -> (count B, H, L)
    return t.view({batch_rows(), dims.heads, pieces.length});
  }
  BlockDims dims;
  SequencePieces pieces;
};

// This rank's block of `extent` columns or rows of a TP-split weight (`segments` blocks).
ShardSpec head_split(int dim, std::int64_t extent, std::int64_t segments, const Group& tp) {
  const std::int64_t length = extent / tp.size();
  return {.dim = dim, .segments = segments, .begin = tp.rank() * length, .length = length};
}

}  // namespace

BlockActivations::BlockActivations(const BlockDims& dims, DType dtype, Device device) {
  const Shape nd{dims.rows(), dims.d}, ni{dims.rows(), dims.inner()}, nf{dims.rows(), dims.ffn},
      n{dims.rows()};
  for (Tensor* t : {&normed1, &x_mid, &normed2}) *t = Tensor::empty(nd, dtype, device);
  for (Tensor* t : {&o, &q, &k, &v, &K, &V, &q_rope, &k_rope, &attn, &gated})
    *t = Tensor::empty(ni, dtype, device);
  const DType stats = statistics_dtype(dtype, device);
  gate = Tensor::empty(ni, stats, device);
  rstd1 = Tensor::empty(n, stats, device);
  rstd2 = Tensor::empty(n, stats, device);
  lse = Tensor::empty({dims.batch, dims.heads, dims.seq}, stats, device);
  h1 = Tensor::empty(nf, dtype, device);
  h2 = Tensor::empty(nf, dtype, device);
}

BlockScratch::BlockScratch(const BlockDims& dims, DType dtype, Device device) {
  const Shape nd{dims.rows(), dims.d}, ni{dims.rows(), dims.inner()};
  proj = Tensor::empty({dims.rows(), 5 * dims.inner()}, dtype, device);
  dproj = Tensor::empty({dims.rows(), 5 * dims.inner()}, dtype, device);
  for (Tensor* t : {&g, &d_gated, &d_attn, &d_o, &dq, &dk, &dv, &dq_rope, &dk_rope, &dV, &dg})
    *t = Tensor::empty(ni, dtype, device);
  for (Tensor* t : {&dnormed, &dx_mid}) *t = Tensor::empty(nd, dtype, device);
  dh1 = Tensor::empty({dims.rows(), dims.ffn}, dtype, device);
  dh2 = Tensor::empty({dims.rows(), dims.ffn}, dtype, device);
}

std::string RatBlock::prefix(std::int64_t layer) {
  return "backbone.layers." + std::to_string(layer) + ".";
}

void RatBlock::register_params(ParamTable& table, const ModelConfig& c, std::int64_t layer,
                               const Group& tp) {
  const std::string p = prefix(layer);
  const std::int64_t d = c.d_model, f = c.ffn_dim();
  table.add(p + "seq_layer.input_norm.weight", {d}, InitKind::ones);
  table.add(p + "seq_layer.in_proj.weight", {5 * d, d}, InitKind::normal,
            head_split(0, d, 5, tp));
  table.add(p + "seq_layer.out_proj.weight", {d, d}, InitKind::normal, head_split(1, d, 1, tp));
  table.add(p + "hidden_layer.ln.weight", {d}, InitKind::ones);
  table.add(p + "hidden_layer.fc1.weight", {f, d}, InitKind::normal, head_split(0, f, 1, tp));
  table.add(p + "hidden_layer.fc2.weight", {d, f}, InitKind::normal, head_split(1, f, 1, tp));
}

RatBlock::Weights RatBlock::views(const ParamStore& store, const std::string& p, bool grads) {
  auto get = [&](const std::string& name) { return grads ? store.grad(p + name) : store.value(p + name); };
  return {get("seq_layer.input_norm.weight"), get("seq_layer.in_proj.weight"),
          get("seq_layer.out_proj.weight"),   get("hidden_layer.ln.weight"),
          get("hidden_layer.fc1.weight"),     get("hidden_layer.fc2.weight")};
}

RatBlock::RatBlock(const ModelConfig& config, std::int64_t layer, const ParamStore& store,
                   const ParallelContext& ctx)
    : rope_base_(config.rope_base),
      eps_(config.norm_eps),
      param_range_(store.range_of(prefix(layer))),
      tp_(ctx.tp),
      sp_(ctx.sp),
      w_(views(store, prefix(layer), false)),
      dw_(views(store, prefix(layer), true)) {}

void RatBlock::forward(const BlockDims& dims, const Sparsity& rule, SequenceSplit split,
                       const Tensor& x_in, Tensor& x_out, BlockActivations& a,
                       BlockScratch& s) const {
  const PieceViews p(dims, split, sp_);
  // Mixer: h = RMSNorm(x); [o, q, k, v, g] = h W_in^T.
  ops::rmsnorm_forward(x_in, w_.in_norm, eps_, a.normed1, a.rstd1);
  ops::linear_forward(a.normed1, w_.in_proj, s.proj);
  Tensor* segments[] = {&a.o, &a.q, &a.k, &a.v, &s.g};
  ops::split_columns(s.proj, segments, 5);

  // Gated recurrence over keys and values, then RoPE on q and on the recurrent keys: in
  // one pass without sp; with sp after the chunks' states are carried across ranks.
  Tensor q_rope = p.heads(a.q_rope), k_rope = p.heads(a.k_rope);
  if (sp_.size() == 1) {
    Tensor gate = p.heads(a.gate), K = p.heads(a.K), V = p.heads(a.V);
    ops::gated_scan_rope_forward(p.heads(s.g), p.heads(a.k), p.heads(a.v), p.heads(a.q),
                                 rope_base_, 0, gate, K, V, q_rope, k_rope);
  } else {
    Tensor gate = p.seq(a.gate), K = p.seq(a.K), V = p.seq(a.V);
    sp_gated_scan_forward(sp_, split, p.seq(s.g), p.seq(a.k), p.seq(a.v), gate, K, V);
    for (int i = 0; i < p.pieces.count; ++i) {  // each piece from its first global position
      Tensor q_rope_i = p.pieces.rows_of(q_rope, i), k_rope_i = p.pieces.rows_of(k_rope, i);
      ops::rope_forward(p.pieces.rows_of(p.heads(a.q), i), rope_base_, p.pieces.begin(i),
                        q_rope_i);
      ops::rope_forward(p.pieces.rows_of(p.heads(a.K), i), rope_base_, p.pieces.begin(i),
                        k_rope_i);
    }
  }

  Tensor attn = p.heads(a.attn), lse = p.lse(a.lse);
  sp_attention_forward(sp_, split, q_rope, k_rope, p.heads(a.V), rule, attn, lse);
  ops::output_gate_forward(a.attn, a.o, a.gated);
  ops::linear_forward(a.gated, w_.out_proj, a.x_mid);
  tp_.all_reduce_sum(a.x_mid);  // row-parallel W_out: sum the heads' partial outputs
  ops::add_inplace(a.x_mid, x_in);

  // FFN: x + fc2(GELU(fc1(RMSNorm(x)))).
  ops::rmsnorm_forward(a.x_mid, w_.ffn_norm, eps_, a.normed2, a.rstd2);
  ops::linear_forward(a.normed2, w_.fc1, a.h1);
  ops::gelu_forward(a.h1, a.h2);
  ops::linear_forward(a.h2, w_.fc2, x_out);
  tp_.all_reduce_sum(x_out);  // row-parallel fc2
  ops::add_inplace(x_out, a.x_mid);
}

void RatBlock::backward(const BlockDims& dims, const Sparsity& rule, SequenceSplit split,
                        const Tensor& x_in, const BlockActivations& a, const Tensor& dx_out,
                        Tensor& dx_in, BlockScratch& s) {
  const PieceViews p(dims, split, sp_);
  // FFN. The residual passes dx_out straight through to dx_mid.
  ops::linear_backward(a.h2, w_.fc2, dx_out, &s.dh2, dw_.fc2);
  ops::gelu_backward(a.h1, s.dh2, s.dh1);
  ops::linear_backward(a.normed2, w_.fc1, s.dh1, &s.dnormed, dw_.fc1);
  tp_.all_reduce_sum(s.dnormed);  // column-parallel fc1: its input was used by every rank
  ops::rmsnorm_backward(a.x_mid, w_.ffn_norm, a.rstd2, s.dnormed, s.dx_mid, dw_.ffn_norm);
  ops::add_inplace(s.dx_mid, dx_out);

  // Mixer, in reverse.
  ops::linear_backward(a.gated, w_.out_proj, s.dx_mid, &s.d_gated, dw_.out_proj);
  ops::output_gate_backward(a.attn, a.o, s.d_gated, s.d_attn, s.d_o);
  Tensor dq_rope = p.heads(s.dq_rope), dk_rope = p.heads(s.dk_rope), dV = p.heads(s.dV);
  sp_attention_backward(sp_, split, p.heads(a.q_rope), p.heads(a.k_rope), p.heads(a.V),
                        p.heads(a.attn), p.lse(a.lse), p.heads(s.d_attn), rule, dq_rope, dk_rope,
                        dV);
  Tensor dq = p.heads(s.dq);
  if (sp_.size() == 1) {
    Tensor dg = p.heads(s.dg), dk = p.heads(s.dk), dv = p.heads(s.dv);
    ops::gated_scan_rope_backward(p.heads(a.gate), p.heads(a.k), p.heads(a.v), p.heads(a.K),
                                  p.heads(a.V), dq_rope, dk_rope, dV, rope_base_, 0, dg, dk, dv,
                                  dq);
  } else {
    for (int i = 0; i < p.pieces.count; ++i) {
      Tensor dq_i = p.pieces.rows_of(dq, i), dk_rope_i = p.pieces.rows_of(dk_rope, i);
      ops::rope_backward(p.pieces.rows_of(dq_rope, i), rope_base_, p.pieces.begin(i), dq_i);
      // dL/dK (pre-RoPE), in place
      ops::rope_backward(dk_rope_i, rope_base_, p.pieces.begin(i), dk_rope_i);
    }
    Tensor dg = p.seq(s.dg), dk = p.seq(s.dk), dv = p.seq(s.dv);
    sp_gated_scan_backward(sp_, split, p.seq(a.gate), p.seq(a.k), p.seq(a.v), p.seq(a.K),
                           p.seq(a.V), p.seq(s.dk_rope), p.seq(s.dV), dg, dk, dv);
  }
  const Tensor* segments[] = {&s.d_o, &s.dq, &s.dk, &s.dv, &s.dg};
  ops::concat_columns(segments, 5, s.dproj);
  ops::linear_backward(a.normed1, w_.in_proj, s.dproj, &s.dnormed, dw_.in_proj);
  tp_.all_reduce_sum(s.dnormed);  // column-parallel W_in
  ops::rmsnorm_backward(x_in, w_.in_norm, a.rstd1, s.dnormed, dx_in, dw_.in_norm);
  ops::add_inplace(dx_in, s.dx_mid);
}

}  // namespace ratrain
