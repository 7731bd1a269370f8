// Pinned host memory and copies beside the compute stream, CUDA build (design in
// async_host_copy.hpp).
#include <algorithm>
#include <cstring>

#include "runtime/allocator.hpp"
#include "runtime/async_host_copy.hpp"
#include "runtime/compute_stream.hpp"
#include "runtime/cuda_check.hpp"
#include "runtime/device_memory.hpp"

namespace ratrain {
namespace {

// The process's stream for copies to the host.
cudaStream_t copy_stream() {
  static const cudaStream_t stream = cuda::new_side_stream();
  return stream;
}

}  // namespace

std::shared_ptr<std::byte> allocate_pinned_host_storage(std::size_t bytes) {
  if (!cuda_available()) return allocate_storage(bytes, Device::cpu, Fill::unspecified);
  void* ptr = nullptr;
  RT_CHECK_CUDA(cudaHostAlloc(&ptr, std::max<std::size_t>(bytes, 1), cudaHostAllocDefault));
  // A failed free at exit cannot be reported to anyone: ignore its status.
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(ptr),
                                    [](std::byte* p) { (void)cudaFreeHost(p); });
}

struct AsyncHostCopies::Impl {
  int device = -1;                 // whose streams the events belong to
  cudaEvent_t start = nullptr;     // the compute stream when the first copy was queued
  cudaEvent_t done = nullptr;      // the copy stream after the last copy (close())
  bool closed = false;

  bool queued() const { return start != nullptr; }
};

AsyncHostCopies::AsyncHostCopies() : impl_(std::make_unique<Impl>()) {}

AsyncHostCopies::~AsyncHostCopies() {
  if (!impl_->queued()) return;
  // Never let the destination go while the engines may still write it. Errors here
  // cannot be thrown; the copy's own call reported any.
  (void)cudaSetDevice(impl_->device);
  (void)cudaStreamSynchronize(copy_stream());
  (void)cudaEventDestroy(impl_->start);
  if (impl_->done) (void)cudaEventDestroy(impl_->done);
}

void AsyncHostCopies::copy_to_host(void* dst, const void* src, Device src_device,
                                   std::size_t bytes) {
  RT_REQUIRE(!impl_->closed, "AsyncHostCopies: copy queued after close()");
  if (!bytes) return;
  if (src_device == Device::cpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
  if (!impl_->queued()) {
    RT_CHECK_CUDA(cudaGetDevice(&impl_->device));
    RT_CHECK_CUDA(cudaEventCreateWithFlags(&impl_->start, cudaEventDisableTiming));
    RT_CHECK_CUDA(cudaEventRecord(impl_->start, cuda::compute_stream()));
    RT_CHECK_CUDA(cudaStreamWaitEvent(copy_stream(), impl_->start, 0));
  }
  RT_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, copy_stream()));
}

void AsyncHostCopies::close() {
  impl_->closed = true;
  if (!impl_->queued()) return;
  RT_CHECK_CUDA(cudaEventCreateWithFlags(&impl_->done, cudaEventDisableTiming));
  RT_CHECK_CUDA(cudaEventRecord(impl_->done, copy_stream()));
}

void AsyncHostCopies::wait() const {
  RT_REQUIRE(impl_->closed, "AsyncHostCopies: wait() before close()");
  if (!impl_->queued()) return;
  // The caller may be another thread, whose current device is not necessarily ours.
  RT_CHECK_CUDA(cudaSetDevice(impl_->device));
  RT_CHECK_CUDA(cudaEventSynchronize(impl_->done));
}

void AsyncHostCopies::order_compute_after() const {
  RT_REQUIRE(impl_->closed, "AsyncHostCopies: order_compute_after() before close()");
  if (!impl_->queued()) return;
  RT_CHECK_CUDA(cudaStreamWaitEvent(cuda::compute_stream(), impl_->done, 0));
}

}  // namespace ratrain
