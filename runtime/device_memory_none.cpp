// Device memory services of a build without the CUDA backend: none (see
// device_memory.hpp); host-to-host copies still work so callers need no special case.
#include <cstring>

#include "runtime/device_memory.hpp"
#include "runtime/error.hpp"

namespace ratrain {

int visible_gpus() { return 0; }
bool cuda_available() { return false; }

void bind_local_device(int) {
  RT_FAIL("cannot bind a GPU: no CUDA device is visible: this build has no CUDA backend "
          "(configure with the cuda preset)");
}

std::shared_ptr<std::byte> allocate_device_storage(std::size_t bytes) {
  RT_FAIL("cannot allocate ", bytes, " bytes of GPU memory: this build has no CUDA backend "
          "(configure with the cuda preset)");
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
  RT_REQUIRE(dst_device == Device::cpu && src_device == Device::cpu,
             "cannot copy to or from the GPU: this build has no CUDA backend");
  if (bytes) std::memmove(dst, src, bytes);
}

void fill_bytes(void* dst, Device device, std::size_t bytes, unsigned char value) {
  RT_REQUIRE(device == Device::cpu, "cannot fill GPU memory: this build has no CUDA backend");
  if (bytes) std::memset(dst, value, bytes);
}

bool can_convert_on_device(DType, DType) { return false; }
void convert_on_device(void*, DType, const void*, DType, std::int64_t) {
  RT_FAIL("cannot convert on the GPU: this build has no CUDA backend");
}

void synchronize_device() {}

DeviceCacheStats device_cache_stats() { return {}; }
void release_cached_device_memory() {}

}  // namespace ratrain
