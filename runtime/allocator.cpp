#include "runtime/allocator.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "runtime/device_memory.hpp"
#include "runtime/error.hpp"

namespace ratrain {
namespace {

struct Counters {
  std::atomic<std::int64_t> in_use{0};
  std::atomic<std::int64_t> peak{0};

  void add(std::int64_t bytes) {
    const std::int64_t now = in_use.fetch_add(bytes) + bytes;
    std::int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
};

Counters& counters(Device device) {
  static Counters host, cuda;
  return device == Device::cpu ? host : cuda;
}

constexpr std::size_t kAlignment = 64;  // one cache line; also what AVX-512 loads want

// The byte pattern of freshly allocated storage, if any (see Fill).
std::optional<unsigned char> initial_byte(Fill fill) {
  if (fill == Fill::zeros) return 0;
#ifdef NDEBUG
  return std::nullopt;
#else
  return 0xFF;
#endif
}

}  // namespace

std::shared_ptr<std::byte> allocate_storage(std::size_t bytes, Device device, Fill fill) {
  const std::optional<unsigned char> pattern = initial_byte(fill);
  if (device == Device::cuda) {
    std::shared_ptr<std::byte> block = allocate_device_storage(bytes);
    if (pattern) fill_bytes(block.get(), device, bytes, *pattern);
    const auto size = static_cast<std::int64_t>(bytes);
    counters(device).add(size);
    // Keeps the cache's block alive and counts its release.
    return std::shared_ptr<std::byte>(block.get(), [block, size](std::byte*) mutable {
      block.reset();
      counters(Device::cuda).in_use.fetch_sub(size);
    });
  }
  const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* ptr = rounded ? std::aligned_alloc(kAlignment, rounded) : nullptr;
  RT_REQUIRE(ptr || rounded == 0, "out of host memory allocating ", bytes, " bytes");
  if (ptr && pattern) std::memset(ptr, *pattern, rounded);
  const auto size = static_cast<std::int64_t>(rounded);
  counters(device).add(size);
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(ptr), [size, device](std::byte* p) {
    std::free(p);
    counters(device).in_use.fetch_sub(size);
  });
}

MemoryStats memory_stats(Device device) {
  auto& c = counters(device);
  return {c.in_use.load(), c.peak.load()};
}

void reset_peak_memory(Device device) {
  auto& c = counters(device);
  c.peak = c.in_use.load();
}

}  // namespace ratrain
