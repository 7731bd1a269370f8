// Attention backward on the GPU under the RAT+ visibility rule, the function of
// kernels/cpu/attention.cpp: with p_ij = exp(scale q_i.k_j - lse_i), scale = 1/sqrt(dh),
// delta_i = dout_i . out_i and ds_ij = p_ij (dout_i . v_j - delta_i):
//   dv_j = sum_i p_ij dout_i,  dk_j = scale sum_i ds_ij q_i,  dq_i = scale sum_j ds_ij k_j.
// q, k, v, out, dout, dq, dk, dv: (B, T, H, dh) bf16 or f32; lse (B, H, T) f32.
//
// Three steps on the stream:
//   1. delta (B, H, T) f32 = dout . out per row (one warp per row);
//   2. the key-major kernel (for bf16: warpgroup MMA for dh 128, mma.sync for dh 64;
//      else CUDA cores; see attention_rule.cuh): dk, dv written once per row by the CTA
//      owning the key;
//      dq accumulated in fp32 with atomics, straight into dq when it is f32, else into
//      an f32 scratch buffer. dq is therefore not bitwise deterministic (the order in
//      which key tiles add to a row varies); dk and dv are.
//   3. bf16 only: the scratch rounded into dq.
#include <cmath>
#include <type_traits>

#include "kernels/cuda/attention_backward_mma.cuh"
#include "kernels/cuda/attention_backward_simt.cuh"
#include "kernels/cuda/attention_backward_wgmma.cuh"
#include "kernels/cuda/cuda_ops.hpp"
#include "kernels/cuda/dq_accumulator.cuh"

namespace ratrain::cuda {
namespace {

constexpr const char* kOp = "attention_backward";

template <typename Cfg, typename Kernel>
void launch_backward_tensor_cores(Kernel kernel, const BackwardArgs<__nv_bfloat16>& args,
                                  cudaStream_t stream) {
  const BackwardPlan plan = BackwardPlan::of(args.keys, Cfg::kBlockN);
  launch_attention_kernel(kernel, backward_tile_order(args.shape, plan, sizeof(__nv_bfloat16), kOp),
                          Cfg::kThreads, Cfg::kSmemBytes, stream, args);
}

template <typename T>
void launch_backward_simt(const BackwardArgs<T>& args, cudaStream_t stream) {
  using Cfg = SimtBackwardConfig;
  const BackwardPlan plan = BackwardPlan::of(args.keys, Cfg::kBlockN);
  with_columns_per_lane(args.shape.dh, [&](auto columns) {
    launch_attention_kernel(attention_backward_simt_kernel<T, decltype(columns)::value>,
                            backward_tile_order(args.shape, plan, sizeof(T), kOp), Cfg::kThreads,
                            Cfg::smem_bytes(args.shape.dh), stream, args);
  });
}

}  // namespace

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, const Sparsity& rule, Tensor& dq,
                        Tensor& dk, Tensor& dv, cudaStream_t stream) {
  const AttentionShape shape = attention_shape(q, kOp);
  if (shape.rows() == 0) return;
  const KeySets keys = KeySets::of(rule, shape.seq);
  const double scale = 1.0 / std::sqrt(double(shape.dh));
  const Tensor delta = Tensor::empty({q.dim(0), q.dim(2), q.dim(1)}, DType::f32, Device::cuda);  // (B, H, T)
  dispatch_storage(q, kOp, [&](auto tag) {
    using T = decltype(tag);
    launch_attention_delta(cptr<T>(out), cptr<T>(dout), ptr<float>(delta), shape, stream);

    const DqAccumulator<T> dq_acc(dq, DqUpdate::overwrite, stream);

    const BackwardArgs<T> args{cptr<T>(q),        cptr<T>(k),           cptr<T>(v),
                               cptr<T>(dout),     cptr<float>(lse),     cptr<float>(delta),
                               dq_acc.data(),     ptr<T>(dk),           ptr<T>(dv),
                               shape,             keys,
                               static_cast<float>(scale * 1.4426950408889634),
                               static_cast<float>(scale)};
    bool done = false;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      if (mma_supports(shape, {&q, &k, &v, &dout, &dk, &dv})) {
        if (shape.dh == WgmmaBackwardConfig::kD)
          launch_backward_tensor_cores<WgmmaBackwardConfig>(attention_backward_wgmma_kernel, args, stream);
        else
          launch_backward_tensor_cores<MmaBackwardConfig<64>>(attention_backward_mma_kernel<64>, args, stream);
        done = true;
      }
    }
    if (!done) launch_backward_simt(args, stream);
    dq_acc.finish(stream);
  });
}

}  // namespace ratrain::cuda
