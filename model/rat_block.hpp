// One RAT+ layer: the mixer ("seq_layer") and the FFN ("hidden_layer"), each a
// pre-norm residual block (RATPLUS.md "One layer"), with explicit forward and backward.
//
// Forward saves in BlockActivations exactly what backward reads. Under activation
// recompute the model keeps only each layer's input and re-runs `forward` into one
// shared BlockActivations just before that layer's backward.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "kernels/visibility.hpp"
#include "model/model_config.hpp"
#include "model/param_store.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

// The sizes one rank works on: `seq` is its part of the sequence (sequence
// parallelism), `heads` and `ffn` its part of the heads and of the FFN width (tensor
// parallelism); `d`, the residual stream, is whole on every rank.
struct BlockDims {
  std::int64_t batch = 0, seq = 0, d = 0, heads = 0, head_dim = 0, ffn = 0;
  std::int64_t rows() const { return batch * seq; }
  std::int64_t inner() const { return heads * head_dim; }  // this rank's attention width
  bool operator==(const BlockDims&) const = default;
};

// The dtype of per-row statistics (RMSNorm's rstd, attention's lse) and of the
// recurrence gate: f32 on the GPU whatever the activations' dtype (DESIGN.md "Numerics"),
// the activations' own dtype on the CPU (the op API's rule, kernels/dispatch.hpp).
inline DType statistics_dtype(DType activations, Device device) {
  return device == Device::cuda ? DType::f32 : activations;
}

// Saved activations of one layer (N = batch * seq rows, I = dims.inner(), F = dims.ffn).
struct BlockActivations {
  explicit BlockActivations(const BlockDims& dims, DType dtype, Device device);
  Tensor normed1, rstd1;        // (N, d), (N)      input RMSNorm of the mixer
  Tensor o, q, k, v;            // (N, I) each      segments of h @ W_in^T (g is not kept)
  Tensor gate, K, V;            // (N, I) each      sigmoid(g) and the recurrent keys/values
  Tensor q_rope, k_rope;        // (N, I) each      after RoPE
  Tensor attn, lse;             // (N, I), (B, H, T)
  Tensor gated;                 // (N, I)           attn * sigmoid(o), input of W_out
  Tensor x_mid;                 // (N, d)           residual stream after the mixer
  Tensor normed2, rstd2;        // (N, d), (N)      RMSNorm of the FFN
  Tensor h1, h2;                // (N, F) each      fc1 output, GELU(fc1 output)
};

// Buffers used only transiently within one layer's forward or backward, shared by
// all layers.
struct BlockScratch {
  explicit BlockScratch(const BlockDims& dims, DType dtype, Device device);
  Tensor proj, dproj;                          // (N, 5I)
  Tensor g;                                    // (N, I)
  Tensor d_gated, d_attn, d_o, dq, dk, dv;     // (N, I)
  Tensor dq_rope, dk_rope, dV, dg;             // (N, I)
  Tensor dnormed, dx_mid;                      // (N, d)
  Tensor dh1, dh2;                             // (N, F)
};

// Sequence parallelism: the block works on this rank's pieces of positions under the
// pass's split (parallel/sequence_split.hpp: one contiguous chunk, or two zigzag chunks);
// its N rows are piece-major, (count, B, L). RoPE takes each piece's first global
// position, and the recurrence and attention exchange what crosses chunk boundaries
// (parallel/sequence_scan.hpp, sequence_attention.hpp).
//
// Tensor parallelism (DESIGN.md "Parallel layout"): each TP rank holds a block of the
// heads. W_in is column-parallel per segment (o, q, k, v and g each keep their head
// block), the recurrence and attention are head-local, W_out is row-parallel; fc1 is
// column-parallel, fc2 row-parallel. Each row-parallel output is summed over tp in
// forward, each column-parallel input gradient in backward: four all-reduces of (N, d)
// per layer and step, none with a group of one.
class RatBlock {
 public:
  // Adds this layer's parameters (the authors' names) to `table`: the parts that TP
  // rank `tp.rank()` of `tp.size()` holds.
  static void register_params(ParamTable& table, const ModelConfig& config, std::int64_t layer,
                              const Group& tp);
  static std::string prefix(std::int64_t layer);

  RatBlock(const ModelConfig& config, std::int64_t layer, const ParamStore& store,
           const ParallelContext& ctx);

  // The flat range [first, second) of this layer's parameters in the store's buffers.
  const std::pair<std::int64_t, std::int64_t>& param_range() const { return param_range_; }

  // x_in, x_out: (N, d), rows piece-major under `split` (the pass's, the same for every
  // layer and on every sp rank). Fills `act`; uses `scratch`.
  void forward(const BlockDims& dims, const Sparsity& rule, SequenceSplit split,
               const Tensor& x_in, Tensor& x_out, BlockActivations& act,
               BlockScratch& scratch) const;
  // dx_out -> dx_in (N, d), both may alias. Parameter gradients accumulate.
  // Not const: it accumulates into this layer's parameter gradients.
  void backward(const BlockDims& dims, const Sparsity& rule, SequenceSplit split,
                const Tensor& x_in, const BlockActivations& act, const Tensor& dx_out,
                Tensor& dx_in, BlockScratch& scratch);

 private:
  struct Weights {
    Tensor in_norm, in_proj, out_proj, ffn_norm, fc1, fc2;
  };
  static Weights views(const ParamStore& store, const std::string& prefix, bool grads);

  double rope_base_;
  double eps_;
  std::pair<std::int64_t, std::int64_t> param_range_;
  Group tp_;
  Group sp_;
  Weights w_;
  Weights dw_;
};

}  // namespace ratrain
