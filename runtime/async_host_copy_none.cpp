// Pinned memory and asynchronous copies in a build without CUDA: ordinary host memory
// and copies done at once (see async_host_copy.hpp).
#include <cstring>

#include "runtime/allocator.hpp"
#include "runtime/async_host_copy.hpp"
#include "runtime/error.hpp"

namespace ratrain {

std::shared_ptr<std::byte> allocate_pinned_host_storage(std::size_t bytes) {
  return allocate_storage(bytes, Device::cpu, Fill::unspecified);
}

struct AsyncHostCopies::Impl {
  bool closed = false;  // checked as in the CUDA build, so CPU tests catch misuse
};

AsyncHostCopies::AsyncHostCopies() : impl_(std::make_unique<Impl>()) {}
AsyncHostCopies::~AsyncHostCopies() = default;

void AsyncHostCopies::copy_to_host(void* dst, const void* src, Device src_device,
                                   std::size_t bytes) {
  RT_REQUIRE(!impl_->closed, "AsyncHostCopies: copy queued after close()");
  RT_REQUIRE(src_device == Device::cpu, "cannot copy from the GPU: this build has no CUDA backend");
  if (bytes) std::memcpy(dst, src, bytes);
}

void AsyncHostCopies::close() { impl_->closed = true; }

void AsyncHostCopies::wait() const {
  RT_REQUIRE(impl_->closed, "AsyncHostCopies: wait() before close()");
}

void AsyncHostCopies::order_compute_after() const {
  RT_REQUIRE(impl_->closed, "AsyncHostCopies: order_compute_after() before close()");
}

}  // namespace ratrain
