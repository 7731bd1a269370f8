// Host (and, with the CUDA backend, device) memory for tensors, with usage counters
// that the metrics line reports (current and peak bytes per device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/dtype.hpp"

namespace ratrain {

struct MemoryStats {
  std::int64_t bytes_in_use = 0;
  std::int64_t peak_bytes = 0;
};

// Returns zero-initialised storage of `bytes` bytes, 64-byte aligned, released when the
// last owner goes away. Throws ratrain::Error on failure, naming the size.
std::shared_ptr<std::byte> allocate_storage(std::size_t bytes, Device device);

MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);

}  // namespace ratrain
