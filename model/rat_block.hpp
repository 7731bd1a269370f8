// One RAT+ layer: the mixer ("seq_layer") and the FFN ("hidden_layer"), each a
// pre-norm residual block (RATPLUS.md "One layer"), with explicit forward and backward.
//
// Forward saves in BlockActivations exactly what backward reads. Under activation
// recompute the model keeps only each layer's input and re-runs `forward` into one
// shared BlockActivations just before that layer's backward.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/visibility.hpp"
#include "model/model_config.hpp"
#include "model/param_store.hpp"

namespace ratrain {

struct BlockDims {
  std::int64_t batch = 0, seq = 0, d = 0, heads = 0, head_dim = 0, ffn = 0;
  std::int64_t rows() const { return batch * seq; }
  bool operator==(const BlockDims&) const = default;
};

// The dtype of per-row statistics (RMSNorm's rstd, attention's lse) and of the
// recurrence gate: f32 on the GPU whatever the activations' dtype (DESIGN.md "Numerics"),
// the activations' own dtype on the CPU (the op API's rule, kernels/dispatch.hpp).
inline DType statistics_dtype(DType activations, Device device) {
  return device == Device::cuda ? DType::f32 : activations;
}

// Saved activations of one layer (N = batch * seq rows).
struct BlockActivations {
  explicit BlockActivations(const BlockDims& dims, DType dtype, Device device);
  Tensor normed1, rstd1;        // (N, d), (N)      input RMSNorm of the mixer
  Tensor o, q, k, v;            // (N, d) each      segments of h @ W_in^T (g is not kept)
  Tensor gate, K, V;            // (N, d) each      sigmoid(g) and the recurrent keys/values
  Tensor q_rope, k_rope;        // (N, d) each      after RoPE
  Tensor attn, lse;             // (N, d), (B, H, T)
  Tensor gated;                 // (N, d)           attn * sigmoid(o), input of W_out
  Tensor x_mid;                 // (N, d)           residual stream after the mixer
  Tensor normed2, rstd2;        // (N, d), (N)      RMSNorm of the FFN
  Tensor h1, h2;                // (N, 4d) each     fc1 output, GELU(fc1 output)
};

// Buffers used only transiently within one layer's forward or backward, shared by
// all layers.
struct BlockScratch {
  explicit BlockScratch(const BlockDims& dims, DType dtype, Device device);
  Tensor proj, dproj;                          // (N, 5d)
  Tensor g;                                    // (N, d)
  Tensor d_gated, d_attn, d_o, dq, dk, dv;     // (N, d)
  Tensor dq_rope, dk_rope, dV, dg;             // (N, d)
  Tensor dnormed, dx_mid;                      // (N, d)
  Tensor dh1, dh2;                             // (N, 4d)
};

class RatBlock {
 public:
  // Adds this layer's parameters (the authors' names) to `table`.
  static void register_params(ParamTable& table, const ModelConfig& config, std::int64_t layer);
  static std::string prefix(std::int64_t layer);

  RatBlock(const ModelConfig& config, std::int64_t layer, const ParamStore& store);

  // x_in, x_out: (N, d). Fills `act`; uses `scratch`.
  void forward(const BlockDims& dims, const Sparsity& rule, const Tensor& x_in, Tensor& x_out,
               BlockActivations& act, BlockScratch& scratch) const;
  // dx_out -> dx_in (N, d), both may alias. Parameter gradients accumulate.
  // Not const: it accumulates into this layer's parameter gradients.
  void backward(const BlockDims& dims, const Sparsity& rule, const Tensor& x_in,
                const BlockActivations& act, const Tensor& dx_out, Tensor& dx_in,
                BlockScratch& scratch);

 private:
  struct Weights {
    Tensor in_norm, in_proj, out_proj, ffn_norm, fc1, fc2;
  };
  static Weights views(const ParamStore& store, const std::string& prefix, bool grads);

  double rope_base_;
  double eps_;
  Weights w_;
  Weights dw_;
};

}  // namespace ratrain
