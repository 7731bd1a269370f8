// Index lists uploaded once per distinct content (see index_tensors.hpp).
#include "runtime/index_tensors.hpp"

#include <algorithm>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "runtime/error.hpp"
#include "runtime/rng.hpp"

namespace ratrain {
namespace {

// 16 Mi indices (64 MiB): far more than the lists of one layout (each at most a few times
// the chunk length), so starting over means the layout or T changed.
constexpr std::size_t kMaxCachedElements = std::size_t{1} << 24;

struct Key {
  Device device;
  std::vector<std::int32_t> values;
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  std::size_t operator()(const Key& key) const {  // FNV-1a of the values' bytes (rng.hpp's)
    const std::string_view bytes(reinterpret_cast<const char*>(key.values.data()),
                                 key.values.size() * sizeof(std::int32_t));
    return static_cast<std::size_t>(stream_key(bytes) ^ static_cast<std::uint64_t>(key.device));
  }
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<Key, Tensor, KeyHash> lists;
  // Device lists by their storage address, with their host copies: the cache holds the
  // device tensors, so no other tensor can have that address while an entry exists.
  std::unordered_map<const void*, Tensor> host_copies;
  std::size_t elements = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: device tensors must not outlive CUDA
  return *c;
}

}  // namespace

Tensor index_tensor(const std::vector<std::int32_t>& values, Device device) {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  Key key{device, values};
  if (const auto found = c.lists.find(key); found != c.lists.end()) return found->second;
  if (c.elements + values.size() > kMaxCachedElements) {
    c.lists.clear();
    c.host_copies.clear();
    c.elements = 0;
  }
  const auto n = static_cast<std::int64_t>(values.size());
  Tensor host = Tensor::empty({n}, DType::i32);
  std::copy(values.begin(), values.end(), host.data<std::int32_t>());
  Tensor stored = device == Device::cpu ? host : host.to(device);
  if (device != Device::cpu && n > 0) c.host_copies.emplace(stored.raw(), host);
  c.elements += values.size();
  c.lists.emplace(std::move(key), stored);
  return stored;
}

Tensor host_values_of(const Tensor& t) {
  RT_REQUIRE(t.dtype() == DType::i32, "host_values_of: an index list is i32, got ",
             dtype_name(t.dtype()));
  if (t.device() == Device::cpu) return t;
  {
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    const auto found = c.host_copies.find(t.raw());
    if (found != c.host_copies.end() && found->second.numel() == t.numel()) return found->second;
  }
  return t.to(Device::cpu);
}

std::size_t cached_index_tensors() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.lists.size();
}

}  // namespace ratrain
