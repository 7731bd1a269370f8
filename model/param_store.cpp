#include "model/param_store.hpp"

#include "runtime/rng.hpp"

namespace ratrain {

void ParamTable::add(std::string name, Shape shape, InitKind init) {
  RT_ASSERT(!contains(name));
  ParamEntry e{std::move(name), std::move(shape), total_, 0, init};
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
}  // namespace

ParamStore::ParamStore(ParamTable table, DType dtype, Device device)
    : table_(std::move(table)),
      values_(Tensor::zeros({table_.total_numel()}, dtype, device)),
      master_(Tensor::zeros({needs_master(dtype, device) ? table_.total_numel() : 0}, DType::f32,
                            device)),
      grads_(Tensor::zeros({table_.total_numel()},
                           device == Device::cuda ? DType::f32 : dtype, device)) {}

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
  Tensor host = Tensor::empty({table_.total_numel()}, DType::f64);
  double* out = host.data<double>();
  for (const auto& e : table_.entries()) {
    const CounterRng rng(seed, e.name);
    // Each element's draw depends only on (seed, name, index): any thread order gives the
    // same weights (1.5B parameters take ~90 s on one thread).
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < e.numel; ++i)
      out[e.offset + i] = e.init == InitKind::ones ? 1.0 : std * rng.normal(static_cast<std::uint64_t>(i));
  }
  if (has_master()) master_.copy_from(host);
  values_.copy_from(host);
}

}  // namespace ratrain
