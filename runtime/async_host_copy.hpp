// Copies from the GPU into host memory that run beside the training step, for the
// asynchronous checkpoint (issue #5: "time training is blocked per save").
//
// Page-locked ("pinned") host memory is what lets the copy engines move data at the full
// PCIe rate while kernels run: a copy into pageable memory is staged by the driver through
// a bounce buffer, synchronously and at a fraction of that rate. Pinning is slow (seconds
// for tens of GiB), so callers allocate such buffers once and reuse them.
//
// AsyncHostCopies queues copies on a copy stream of its own that starts after the work
// the compute stream has queued so far (the values they read are those of the step just
// ended) and then runs concurrently with later kernels. Two joins:
//   - wait(): the host blocks until the copies are done (from any thread: the checkpoint
//     writer's thread calls it before it reads the buffers);
//   - order_compute_after(): the compute stream waits, on the device, for the copies;
//     call it before queuing work that overwrites their sources (the optimizer update).
// Without CUDA (or for host sources) a copy is a memcpy done at once and both joins
// return immediately.
#pragma once

#include <cstddef>
#include <memory>

#include "runtime/dtype.hpp"

namespace ratrain {

// Page-locked host storage of `bytes` (ordinary host storage in a build without CUDA or
// on a machine without a GPU), freed when the last owner releases it.
std::shared_ptr<std::byte> allocate_pinned_host_storage(std::size_t bytes);

class AsyncHostCopies {
 public:
  AsyncHostCopies();
  AsyncHostCopies(const AsyncHostCopies&) = delete;
  AsyncHostCopies& operator=(const AsyncHostCopies&) = delete;
  // Waits for copies still in flight: the destination may be freed after.
  ~AsyncHostCopies();

  // Queues a copy of `bytes` from `src` (on `src_device`) to host memory `dst`, which
  // should be pinned (pageable memory makes the copy synchronous).
  void copy_to_host(void* dst, const void* src, Device src_device, std::size_t bytes);
  // Marks the end of the copies: the joins below cover every copy queued before.
  void close();

  void wait() const;
  void order_compute_after() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ratrain
