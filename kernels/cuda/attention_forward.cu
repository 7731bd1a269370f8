// Attention forward on the GPU under the RAT+ visibility rule: out = softmax(q k^T /
// sqrt(dh)) v over each query's visible keys, lse = log-sum-exp of the scaled scores
// (f32, natural log), the function of kernels/cpu/attention.cpp.
// q, k, v, out: (B, T, H, dh) bf16 or f32; lse (B, H, T) f32.
//
// The launcher picks the kernel: bf16 with 16-byte aligned operands and dh 128 ->
// Hopper warpgroup MMA (attention_forward_wgmma.cuh), dh 64 -> mma.sync tensor cores
// (attention_forward_mma.cuh); anything else -> CUDA cores (attention_forward_simt.cuh).
// All walk the same tile decomposition of the rule (attention_rule.cuh).
#include <cmath>

#include "kernels/cuda/attention_forward_mma.cuh"
#include "kernels/cuda/attention_forward_simt.cuh"
#include "kernels/cuda/attention_forward_wgmma.cuh"
#include "kernels/cuda/cuda_ops.hpp"

namespace ratrain::cuda {
namespace {

constexpr const char* kOp = "attention_forward";

template <typename Cfg, typename Kernel>
void launch_forward_tensor_cores(Kernel kernel, const ForwardArgs<__nv_bfloat16>& args,
                                 cudaStream_t stream) {
  const int query_tiles = (args.shape.seq + Cfg::kBlockM - 1) / Cfg::kBlockM;
  launch_attention_kernel(kernel,
                          forward_tile_order(args.shape, args.keys, query_tiles, sizeof(__nv_bfloat16), kOp),
                          Cfg::kThreads, Cfg::kSmemBytes, stream, args);
}

// The wgmma kernel loads through tensor maps (tma.cuh), made here per call (host work
// of a few microseconds): rows of q, k, v, and the chunk ends of k, v when the rule has
// them.
void launch_forward_wgmma(const ForwardArgs<__nv_bfloat16>& args, cudaStream_t stream) {
  using Cfg = WgmmaForwardConfig;
  static_assert(Cfg::kBlockM == Cfg::kBlockN, "one box height serves q, k and v");
  const AttentionShape& shape = args.shape;
  ForwardTileMaps maps{};
  maps.q = make_attention_rows_map(args.q, shape, Cfg::kBlockM);
  maps.k = make_attention_rows_map(args.k, shape, Cfg::kBlockN);
  maps.v = make_attention_rows_map(args.v, shape, Cfg::kBlockN);
  if (args.keys.stride > 0) {
    maps.k_ends = make_chunk_ends_map(args.k, shape, args.keys.stride, Cfg::kBlockN);
    maps.v_ends = make_chunk_ends_map(args.v, shape, args.keys.stride, Cfg::kBlockN);
  }
  const int query_tiles = (shape.seq + Cfg::kBlockM - 1) / Cfg::kBlockM;
  launch_attention_kernel(attention_forward_wgmma_kernel,
                          forward_tile_order(shape, args.keys, query_tiles, sizeof(__nv_bfloat16), kOp),
                          Cfg::kThreads, Cfg::kSmemBytes, stream, args, maps);
}

template <typename T>
void launch_forward_simt(const ForwardArgs<T>& args, cudaStream_t stream) {
  using Cfg = SimtForwardConfig;
  const int query_tiles = (args.shape.seq + Cfg::kBlockM - 1) / Cfg::kBlockM;
  with_columns_per_lane(args.shape.dh, [&](auto columns) {
    launch_attention_kernel(attention_forward_simt_kernel<T, decltype(columns)::value>,
                            forward_tile_order(args.shape, args.keys, query_tiles, sizeof(T), kOp),
                            Cfg::kThreads, Cfg::smem_bytes(args.shape.dh), stream, args);
  });
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                       Tensor& out, Tensor& lse, cudaStream_t stream) {
  const AttentionShape shape = attention_shape(q, kOp);
  if (shape.rows() == 0) return;
  const KeySets keys = KeySets::of(rule, shape.seq);
  const auto scale_log2 = static_cast<float>(1.4426950408889634 / std::sqrt(double(shape.dh)));
  dispatch_storage(q, kOp, [&](auto tag) {
    using T = decltype(tag);
    const ForwardArgs<T> args{cptr<T>(q), cptr<T>(k), cptr<T>(v), ptr<T>(out), ptr<float>(lse),
                              shape,      keys,       scale_log2};
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      if (mma_supports(shape, {&q, &k, &v, &out})) {
        if (shape.dh == WgmmaForwardConfig::kD) return launch_forward_wgmma(args, stream);
        return launch_forward_tensor_cores<MmaForwardConfig<64>>(attention_forward_mma_kernel<64>, args, stream);
      }
    }
    launch_forward_simt(args, stream);
  });
}

}  // namespace ratrain::cuda
