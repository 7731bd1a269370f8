#include "model/parameter_parts.hpp"

#include <cstring>

namespace ratrain {
namespace {

// Copies element i of `from` to element index.global(i) of `to` (or the reverse), both host
// tensors of one dtype; `index` maps a local element to its global position.
void move_elements(const Tensor& local, const Tensor& global, bool to_global,
                   const PartIndexMap& index) {
  RT_ASSERT(local.dtype() == global.dtype() && local.device() == Device::cpu &&
            global.device() == Device::cpu);
  const std::size_t size = dtype_size(local.dtype());
  auto* l = static_cast<std::byte*>(local.raw());
  auto* g = static_cast<std::byte*>(global.raw());
  for (std::int64_t i = 0; i < local.numel(); ++i) {
    std::byte* at_global = g + index.global(i) * size;
    std::byte* at_local = l + i * size;
    std::memcpy(to_global ? at_global : at_local, to_global ? at_local : at_global, size);
  }
}

}  // namespace

Tensor local_part(const ParamEntry& entry, const Tensor& global) {
  require_shape(global, entry.global_shape, entry.name.c_str());
  if (entry.shard.is_whole()) return global.to(Device::cpu);
  const Tensor host = global.to(Device::cpu);
  Tensor part = Tensor::empty(entry.shape, host.dtype());
  move_elements(part, host, /*to_global=*/false, entry.index_map());
  return part;
}

Tensor gather_parameter(const ParamStore& store, const ParamEntry& entry, const Group& tp) {
  const Tensor part = store.optimizer_value(entry.name).to(Device::cpu);
  if (entry.shard.is_whole()) return part;
  // Each rank writes its part into zeros and the sum over tp fills every element from
  // exactly one rank: exact in any precision, and no rank needs the others' layouts.
  Tensor global = Tensor::zeros(entry.global_shape, part.dtype());
  move_elements(part, global, /*to_global=*/true, entry.index_map());
  tp.all_reduce_sum(global);
  return global;
}

}  // namespace ratrain
