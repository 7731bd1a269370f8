// The fp32 accumulator the attention backward kernels add dq terms into with atomics
// (the query rows of a CTA receive terms from every key tile that sees them): dq itself
// when it is f32, else an f32 scratch, zeroed, that finish() folds into the bf16 dq once,
// so that the terms are summed in fp32 and rounded once.
//   DqUpdate::overwrite   the whole-sequence backward: dq is the call's terms alone.
//   DqUpdate::accumulate  the key-set backward (sequence parallelism): each call adds
//                         the terms of its key set to what dq holds.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <type_traits>

#include "kernels/cuda/storage.cuh"
#include "runtime/cuda_elementwise.cuh"
#include "runtime/tensor.hpp"

namespace ratrain::cuda {

enum class DqUpdate { overwrite, accumulate };

template <typename T>
struct FoldDqAccumulator {
  const float* acc;
  T* out;
  bool add;
  __device__ void operator()(std::int64_t i) const {
    out[i] = from_float<T>(add ? to_float(out[i]) + acc[i] : acc[i]);
  }
};

template <typename T>
class DqAccumulator {
 public:
  static constexpr bool kInPlace = std::is_same_v<T, float>;

  DqAccumulator(Tensor& dq, DqUpdate update, cudaStream_t stream)
      : dq_(dq),
        update_(update),
        scratch_(kInPlace ? Tensor() : Tensor::empty(dq.shape(), DType::f32, Device::cuda)) {
    if (kInPlace && update == DqUpdate::accumulate) return;  // atomics add to dq as it is
    RT_CHECK_CUDA(cudaMemsetAsync(data(), 0, sizeof(float) * static_cast<std::size_t>(dq.numel()),
                                  stream));
  }

  float* data() const { return kInPlace ? ptr<float>(dq_) : ptr<float>(scratch_); }

  // After the kernels: the scratch into dq (bf16). Nothing to do for f32.
  void finish(cudaStream_t stream) const {
    if constexpr (!kInPlace)
      launch_elementwise(FoldDqAccumulator<T>{data(), ptr<T>(dq_), update_ == DqUpdate::accumulate},
                         dq_.numel(), stream);
  }

 private:
  Tensor& dq_;
  DqUpdate update_;
  Tensor scratch_;
};

}  // namespace ratrain::cuda
