// The caching device allocator and host/device copies of a CUDA build (design in
// device_memory.hpp).
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "runtime/cuda_check.hpp"
#include "runtime/device_memory.hpp"

namespace ratrain {
namespace {

constexpr std::size_t kSmallLimit = std::size_t{1} << 20;  // below: 512 B granules
constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kLargeGranule = std::size_t{2} << 20;

std::size_t rounded_size(std::size_t bytes) {
  const std::size_t granule = bytes < kSmallLimit ? kSmallGranule : kLargeGranule;
  return (std::max<std::size_t>(bytes, 1) + granule - 1) / granule * granule;
}

class DeviceCache {
 public:
  void* take(std::size_t size) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = free_.find(size); it != free_.end()) {
        void* ptr = it->second;
        free_.erase(it);
        cached_ -= static_cast<std::int64_t>(size);
        return ptr;
      }
    }
    void* ptr = nullptr;
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky-free error before retrying
      release_all();
      status = cudaMalloc(&ptr, size);
    }
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      std::size_t free_bytes = 0, total = 0;
      (void)cudaMemGetInfo(&free_bytes, &total);
      RT_FAIL("out of GPU memory allocating ", size, " bytes (", cudaGetErrorString(status),
              "); the device has ", free_bytes, " of ", total, " bytes free");
    }
    std::lock_guard lock(mutex_);
    ++driver_allocations_;
    return ptr;
  }

  void give_back(void* ptr, std::size_t size) {
    std::lock_guard lock(mutex_);
    free_.emplace(size, ptr);
    cached_ += static_cast<std::int64_t>(size);
  }

  void release_all() {
    std::lock_guard lock(mutex_);
    for (auto& [size, ptr] : free_) RT_CHECK_CUDA(cudaFree(ptr));
    free_.clear();
    cached_ = 0;
  }

  DeviceCacheStats stats() {
    std::lock_guard lock(mutex_);
    return {cached_, driver_allocations_};
  }

 private:
  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;  // rounded size -> block
  std::int64_t cached_ = 0;
  std::int64_t driver_allocations_ = 0;
};

// Never destroyed: blocks may be released by static tensors after main returns, when
// the CUDA context may already be gone; the driver reclaims everything at exit.
DeviceCache& cache() {
  static DeviceCache* instance = new DeviceCache;
  return *instance;
}

cudaMemcpyKind copy_kind(Device dst, Device src) {
  if (dst == Device::cpu) return cudaMemcpyDeviceToHost;  // host-to-host never gets here
  return src == Device::cpu ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice;
}

}  // namespace

int visible_gpus() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

bool cuda_available() { return visible_gpus() > 0; }

void bind_local_device(int local_rank) {
  const int count = visible_gpus();
  RT_REQUIRE(count > 0, "cannot bind a GPU: no CUDA device is visible (or no driver)");
  RT_REQUIRE(local_rank >= 0 && local_rank < count, "this process is rank ", local_rank,
             " of its node but the node has ", count, " visible GPU(s): launch at most one "
             "process per GPU (CUDA_VISIBLE_DEVICES, --ntasks-per-node / --gpus-per-node)");
  RT_CHECK_CUDA(cudaSetDevice(local_rank));
}

std::shared_ptr<std::byte> allocate_device_storage(std::size_t bytes) {
  static const bool have_device = cuda_available();
  RT_REQUIRE(have_device, "cannot allocate ", bytes, " bytes of GPU memory: no CUDA device is "
             "visible (or no driver)");
  const std::size_t size = rounded_size(bytes);
  auto* ptr = static_cast<std::byte*>(cache().take(size));
  return std::shared_ptr<std::byte>(ptr, [size](std::byte* p) { cache().give_back(p, size); });
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
  if (!bytes) return;
  // Host-to-host without the driver: a CUDA build must train on the CPU where no GPU
  // (or no driver) is present.
  if (dst_device == Device::cpu && src_device == Device::cpu)
    std::memmove(dst, src, bytes);
  else
    RT_CHECK_CUDA(cudaMemcpy(dst, src, bytes, copy_kind(dst_device, src_device)));
}

void fill_bytes(void* dst, Device device, std::size_t bytes, unsigned char value) {
  if (!bytes) return;
  if (device == Device::cpu)
    std::memset(dst, value, bytes);
  else
    RT_CHECK_CUDA(cudaMemset(dst, value, bytes));
}

void synchronize_device() { RT_CHECK_CUDA(cudaDeviceSynchronize()); }

DeviceCacheStats device_cache_stats() { return cache().stats(); }
void release_cached_device_memory() { cache().release_all(); }

}  // namespace ratrain
