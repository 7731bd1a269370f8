// Element-wise ops on the GPU: output gate, exact GELU, residual add — forward and
// backward. One grid-stride kernel template applies an op functor to every index; each
// functor states its formula once. Storage f32 or bf16, arithmetic in fp32.
//   output gate: y = a * s,  s = sigmoid(o);  da = dy * s,  do = dy * a * s (1 - s)
//   GELU:        y = x Phi(x);                dx = dy (Phi(x) + x phi(x))
//   add:         acc += x
// These ops are bandwidth-bound (2-5 bytes moved per FLOP); fusing them into the
// neighbouring GEMM epilogues is the later step that removes their round trips.
#include "kernels/cuda/cuda_ops.hpp"
#include "runtime/cuda_elementwise.cuh"
#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {
namespace {

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }
// Phi(x) = erfc(-x / sqrt 2) / 2: unlike (1 + erf(x / sqrt 2)) / 2 it keeps full
// relative precision for negative x, where 1 + erf cancels (GELU(-3) lost 1e-5).
__device__ inline float normal_cdf(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
__device__ inline float normal_pdf(float x) { return 0.39894228040143268f * __expf(-0.5f * x * x); }

template <typename T>
struct OutputGateForward {
  const T *attn, *o;
  T* y;
  __device__ void operator()(std::int64_t i) const {
    y[i] = from_float<T>(to_float(attn[i]) * sigmoid(to_float(o[i])));
  }
};

template <typename T>
struct OutputGateBackward {
  const T *attn, *o, *dy;
  T *dattn, *d_o;
  __device__ void operator()(std::int64_t i) const {
    const float s = sigmoid(to_float(o[i])), g = to_float(dy[i]), a = to_float(attn[i]);
    dattn[i] = from_float<T>(g * s);
    d_o[i] = from_float<T>(g * a * s * (1.0f - s));
  }
};

template <typename T>
struct GeluForward {
  const T* x;
  T* y;
  __device__ void operator()(std::int64_t i) const {
    const float v = to_float(x[i]);
    y[i] = from_float<T>(v * normal_cdf(v));
  }
};

template <typename T>
struct GeluBackward {
  const T *x, *dy;
  T* dx;
  __device__ void operator()(std::int64_t i) const {
    const float v = to_float(x[i]);
    dx[i] = from_float<T>(to_float(dy[i]) * (normal_cdf(v) + v * normal_pdf(v)));
  }
};

template <typename T>
struct AddInPlace {
  T* acc;
  const T* x;
  __device__ void operator()(std::int64_t i) const {
    acc[i] = from_float<T>(to_float(acc[i]) + to_float(x[i]));
  }
};

}  // namespace

void output_gate_forward(const Tensor& attn, const Tensor& o, Tensor& y, cudaStream_t stream) {
  dispatch_storage(attn, "output_gate_forward", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise(OutputGateForward<T>{cptr<T>(attn), cptr<T>(o), ptr<T>(y)}, attn.numel(), stream);
  });
}

void output_gate_backward(const Tensor& attn, const Tensor& o, const Tensor& dy, Tensor& dattn,
                          Tensor& d_o, cudaStream_t stream) {
  dispatch_storage(attn, "output_gate_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise(OutputGateBackward<T>{cptr<T>(attn), cptr<T>(o), cptr<T>(dy), ptr<T>(dattn),
                                             ptr<T>(d_o)},
                       attn.numel(), stream);
  });
}

void gelu_forward(const Tensor& x, Tensor& y, cudaStream_t stream) {
  dispatch_storage(x, "gelu_forward", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise(GeluForward<T>{cptr<T>(x), ptr<T>(y)}, x.numel(), stream);
  });
}

void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx, cudaStream_t stream) {
  dispatch_storage(x, "gelu_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise(GeluBackward<T>{cptr<T>(x), cptr<T>(dy), ptr<T>(dx)}, x.numel(), stream);
  });
}

void add_inplace(Tensor& acc, const Tensor& x, cudaStream_t stream) {
  dispatch_storage(acc, "add_inplace", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise(AddInPlace<T>{ptr<T>(acc), cptr<T>(x)}, acc.numel(), stream);
  });
}

}  // namespace ratrain::cuda
