// Launchers of the CUDA backend (DESIGN.md principle 1), called by the host-side
// dispatch of kernels/ops_*.cpp after its shape and dtype checks, for device tensors.
// Storage is bf16 or f32 (fp32 accumulation always); each launcher takes the stream
// it enqueues on and returns without synchronising.
// Compiled only in a CUDA build (RATRAIN_HAVE_CUDA).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/ops.hpp"
#include "runtime/tensor.hpp"

namespace ratrain::cuda {

// The stream every op enqueues on. For now the legacy default stream, so that the
// synchronous host<->device copies of runtime/device_memory order with the kernels;
// a dedicated stream (with events for copies and the caching allocator) comes with
// the step-level overlap work.
inline cudaStream_t compute_stream() { return nullptr; }

// x, y (N, C), w (C) in one storage type (bf16 or f32); rstd (N) f32.
void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rstd,
                     cudaStream_t stream);
// dx (N, C) overwritten; dw (C) accumulated in fp32 and rounded once to its storage type.
void rmsnorm_backward(const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dy,
                      Tensor& dx, Tensor& dw, cudaStream_t stream);

// Linear layers through cuBLASLt (kernels/cuda/gemm.cu): y = x W^T; dx = dy W (skipped
// when dx is null); dW += dy^T x.
void linear_forward(const Tensor& x, const Tensor& w, Tensor& y, cudaStream_t stream);
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                     cudaStream_t stream);

// Element-wise ops (kernels/cuda/elementwise.cu); same semantics as ops.hpp.
void output_gate_forward(const Tensor& attn, const Tensor& o, Tensor& y, cudaStream_t stream);
void output_gate_backward(const Tensor& attn, const Tensor& o, const Tensor& dy, Tensor& dattn,
                          Tensor& d_o, cudaStream_t stream);
void gelu_forward(const Tensor& x, Tensor& y, cudaStream_t stream);
void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx, cudaStream_t stream);
void add_inplace(Tensor& acc, const Tensor& x, cudaStream_t stream);

// Optimizer (kernels/cuda/optimizer.cu): AdamW on f32 buffers; sum of squares (returned to
// the host, so it synchronises the stream) and scaling of f32 or bf16 buffers.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                  const ops::AdamWHyper& hyper, cudaStream_t stream);
double sum_of_squares(const Tensor& x, cudaStream_t stream);
void scale_inplace(Tensor& x, double factor, cudaStream_t stream);

}  // namespace ratrain::cuda
