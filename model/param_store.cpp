#include "model/param_store.hpp"

#include <algorithm>

#include "kernels/ops.hpp"
#include "runtime/rng.hpp"

namespace ratrain {

PartIndexMap ParamEntry::index_map() const {
  if (shard.is_whole()) return {};
  std::int64_t inner = 1;
  for (std::size_t d = shard.dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const std::int64_t global_extent = global_shape[shard.dim];
  return {.inner = inner,
          .local_extent = shape[shard.dim],
          .global_extent = global_extent,
          .segment_extent = global_extent / shard.segments,
          .begin = shard.begin,
          .length = shard.length};
}

void ParamTable::add(std::string name, Shape global_shape, InitKind init, ShardSpec shard,
                     StageCopies copies) {
  RT_ASSERT(!contains(name));
  Shape shape = global_shape;
  if (!shard.is_whole()) {
    RT_ASSERT(shard.dim < static_cast<int>(shape.size()) && shard.segments > 0 &&
              shape[shard.dim] % shard.segments == 0 && shard.begin >= 0 && shard.length > 0 &&
              shard.begin + shard.length <= shape[shard.dim] / shard.segments);
    shape[shard.dim] = shard.segments * shard.length;
  }
  ParamEntry e{std::move(name), std::move(global_shape), std::move(shape), shard, total_, 0, init,
               copies};
  e.numel = shape_numel(e.shape);
  total_ += e.numel;
  entries_.push_back(std::move(e));
}

bool ParamTable::contains(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return true;
  return false;
}

const ParamEntry& ParamTable::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return e;
  RT_FAIL("no parameter named '", name, "' in this model");
}

namespace {
bool needs_master(DType dtype, Device device) { return device == Device::cuda && dtype != DType::f32; }

std::int64_t round_up(std::int64_t n, std::int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}
}  // namespace

ParamStore::ParamStore(ParamTable table, DType dtype, Device device, int shards)
    : table_(std::move(table)),
      values_(Tensor::zeros({round_up(table_.total_numel(), shards)}, dtype, device)),
      master_(Tensor::zeros({needs_master(dtype, device) ? values_.numel() : 0}, DType::f32,
                            device)),
      grads_(Tensor::zeros({values_.numel()}, device == Device::cuda ? DType::f32 : dtype,
                           device)) {}

void ParamStore::assign(const std::string& name, const Tensor& source) {
  if (has_master()) {
    Tensor master = view_of(master_, name);
    master.copy_from(source);
    view_of(values_, name).copy_from(master);
  } else {
    view_of(values_, name).copy_from(source);
  }
}

void ParamStore::publish_master() {
  if (has_master()) values_.copy_from(master_);
}

void ParamStore::publish_master(std::int64_t begin, std::int64_t numel) {
  if (has_master()) values_.flat_view(begin, {numel}).copy_from(master_.flat_view(begin, {numel}));
}

std::pair<std::int64_t, std::int64_t> ParamStore::range_of(const std::string& prefix) const {
  std::int64_t begin = padded_numel(), end = 0, numel = 0;
  for (const ParamEntry& e : table_.entries()) {
    if (!e.name.starts_with(prefix)) continue;
    begin = std::min(begin, e.offset);
    end = std::max(end, e.offset + e.numel);
    numel += e.numel;
  }
  RT_REQUIRE(numel > 0 && numel == end - begin, "the parameters named '", prefix,
             "*' are not one contiguous range of the flat buffers");
  return {begin, end};
}

Tensor ParamStore::view_of(const Tensor& flat, const std::string& name) const {
  const ParamEntry& e = table_.find(name);
  return flat.flat_view(e.offset, e.shape);
}

Tensor ParamStore::latest_view_of(const Tensor& flat, const std::string& name) const {
  const ParamEntry& e = table_.find(name);
  await_values(e.offset, e.offset + e.numel);
  return flat.flat_view(e.offset, e.shape);
}

void ParamStore::initialize(std::uint64_t seed, double std) {
  // In place on the values' device: on the GPU no host buffer and no transfer (the host
  // took 77 s for the 7.6B model's draws). The master copy draws again rather than
  // converting the values, so it holds the f32 numbers one f32 process holds.
  for (const auto& e : table_.entries()) {
    const ops::NormalDraw draw{.seed = seed,
                               .key = stream_key(e.name),
                               .mean = e.init == InitKind::ones ? 1.0 : 0.0,
                               .std = e.init == InitKind::ones ? 0.0 : std};
    const PartIndexMap map = e.index_map();
    if (has_master()) {
      Tensor master = master_.flat_view(e.offset, {e.numel});
      ops::fill_normal(master, draw, map);
    }
    Tensor values = values_.flat_view(e.offset, {e.numel});
    ops::fill_normal(values, draw, map);
  }
}

}  // namespace ratrain
