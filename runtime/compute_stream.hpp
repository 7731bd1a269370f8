// The streams of a CUDA build. Every kernel is queued on the compute stream: for now the
// legacy default stream, so that the synchronous host<->device copies of
// runtime/device_memory order with the kernels; a dedicated stream (with events for
// copies and the caching allocator) comes with the step-level overlap work. Work that
// runs beside it (NCCL's collectives, the checkpoint's copies to the host) goes to side
// streams and orders with it through events.
#pragma once

#include <cuda_runtime_api.h>

#include "runtime/cuda_check.hpp"

namespace ratrain::cuda {

inline cudaStream_t compute_stream() { return nullptr; }

// A new side stream, for a process-wide static that is never destroyed: its users may
// outlive main()'s CUDA teardown order, and the driver reclaims it at exit. Non-blocking:
// it must not wait for the legacy default stream except where an event says so.
inline cudaStream_t new_side_stream() {
  cudaStream_t stream = nullptr;
  RT_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return stream;
}

}  // namespace ratrain::cuda
