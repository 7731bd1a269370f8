#include "model/param_store.hpp"

#include <algorithm>

#include "runtime/rng.hpp"

namespace ratrain {

std::int64_t ParamEntry::global_index(std::int64_t i) const {
  if (shard.is_whole()) return i;
  // Row-major: i = (outer * local_extent + c) * inner + rest, where only the coordinate
  // c along the cut dimension differs between the local part and the global tensor.
  std::int64_t inner = 1;
  for (std::size_t d = shard.dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const std::int64_t local_extent = shape[shard.dim], global_extent = global_shape[shard.dim];
  const std::int64_t rest = i % inner, c = (i / inner) % local_extent,
                     outer = i / (inner * local_extent);
  const std::int64_t segment = c / shard.length, within = c % shard.length;
  const std::int64_t global_c = segment * (global_extent / shard.segments) + shard.begin + within;
  return (outer * global_extent + global_c) * inner + rest;
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

Tensor ParamStore::view_of(const Tensor& flat, const std::string& name) const {
  const ParamEntry& e = table_.find(name);
  return flat.flat_view(e.offset, e.shape);
}

void ParamStore::initialize(std::uint64_t seed, double std) {
  // Drawn in f64 in pieces of at most kPiece elements, each converted into the values
  // (and the master) at once, so the host holds one piece, not the whole model in f64
  // (8 bytes a parameter: 61 GB for 7.6B, on every data-parallel rank of a node). The
  // conversion is per element, so pieces give the numbers one whole copy gave.
  constexpr std::int64_t kPiece = std::int64_t{1} << 24;  // 128 MiB of f64
  std::int64_t largest = 0;
  for (const auto& e : table_.entries()) largest = std::max(largest, e.numel);
  Tensor buffer = Tensor::empty({std::min(kPiece, largest)}, DType::f64);
  for (const auto& e : table_.entries()) {
    const CounterRng rng(seed, e.name);
    for (std::int64_t begin = 0; begin < e.numel; begin += kPiece) {
      const std::int64_t n = std::min(kPiece, e.numel - begin);
      double* out = buffer.data<double>();
      // Each element's draw depends only on (seed, name, index): any thread order gives
      // the same weights (1.5B parameters take ~90 s on one thread).
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < n; ++i)
        out[i] = e.init == InitKind::ones
                     ? 1.0
                     : std * rng.normal(static_cast<std::uint64_t>(e.global_index(begin + i)));
      const Tensor piece = buffer.flat_view(0, {n});
      if (has_master()) master_.flat_view(e.offset + begin, {n}).copy_from(piece);
      values_.flat_view(e.offset + begin, {n}).copy_from(piece);
    }
  }
}

}  // namespace ratrain
