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

enum class Fill {
  // Contents unspecified: no fill pass over memory the caller overwrites anyway. Builds
  // without NDEBUG poison such storage with 0xFF bytes (NaN in f32, f64 and bf16, -1 in
  // i32), so that a reader of never-written elements fails tests instead of silently
  // seeing zeros.
  unspecified,
  zeros,
};

// Returns storage of `bytes` bytes, 64-byte aligned, filled as `fill` says, released
// when the last owner goes away. Throws ratrain::Error on failure, naming the size.
std::shared_ptr<std::byte> allocate_storage(std::size_t bytes, Device device, Fill fill);

MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);

}  // namespace ratrain
