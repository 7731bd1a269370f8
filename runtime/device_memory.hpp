// Device memory services behind a CUDA-free interface, present in every build: with
// the CUDA backend they use the caching allocator of device_memory_cuda.cpp, without
// it cuda_available() is false and the rest report that the build lacks CUDA.
//
// Caching allocator (CUDA build): cudaMalloc/cudaFree synchronise the device and cost
// tens of microseconds, so freed blocks are kept in per-size free lists and handed out
// again. Sizes are rounded to 512 B below 1 MiB and to 2 MiB above, so that blocks of
// one layer's activations are reused by the next layer's. A block freed on the host
// may be reused at once: all kernels run in order on one compute stream, so work
// queued on the old owner finishes before work queued by the new one. (A second
// stream will need an event per freed block.) On cudaMalloc failure the cache is
// returned to the driver and the allocation retried once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/dtype.hpp"

namespace ratrain {

// True when built with CUDA and at least one device is visible.
bool cuda_available();
// The number of GPUs this process sees (0 without CUDA or without a driver).
int visible_gpus();

// Makes GPU `local_rank` of this node the device of every later CUDA call of this
// process: a job runs one process per GPU, numbered by its rank among the node's
// processes (ParallelContext::local_rank). Call before the first device allocation.
// Fails, naming both numbers, when the node has no such GPU (NCCL cannot give two
// ranks one GPU).
void bind_local_device(int local_rank);

// Device storage of `bytes` (contents unspecified), returned to the cache when the last
// owner releases it. Errors name the size, the bytes in use and cached, and the
// device's free memory.
std::shared_ptr<std::byte> allocate_device_storage(std::size_t bytes);

// Copies `bytes` between any two of host and device memory (synchronous).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes);

// Converts n elements between device buffers of f32 and bf16 (can_convert_on_device),
// on the GPU; a build without CUDA has no such conversion.
bool can_convert_on_device(DType dst, DType src);
void convert_on_device(void* dst, DType dst_type, const void* src, DType src_type, std::int64_t n);

// Waits until the GPU has finished all queued work (no-op without CUDA). For timing
// and tests; the training step orders work with streams, not with this.
void synchronize_device();

// Sets `bytes` bytes at `dst` to `value`, in host or device memory.
void fill_bytes(void* dst, Device device, std::size_t bytes, unsigned char value);

struct DeviceCacheStats {
  std::int64_t cached_bytes = 0;       // held in free lists
  std::int64_t driver_allocations = 0; // cudaMalloc calls so far
};
DeviceCacheStats device_cache_stats();
// Gives every cached block back to the driver.
void release_cached_device_memory();

}  // namespace ratrain
