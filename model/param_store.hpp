// Parameters and their gradients in one flat buffer each (DESIGN.md principle 3).
//
// Precision (DESIGN.md "Numerics"): on the CPU, values and gradients share the model's
// dtype and the values are their own master copy. On the GPU, gradients are f32 and, when
// the values (the copy every op reads) are bf16, an f32 master copy is what the optimizer
// updates; publish_master() then rounds it into the values.
//
// The table maps every parameter name (the authors' checkpoint names, e.g.
// `backbone.layers.3.seq_layer.in_proj.weight`) to its shape and its offset in the
// flat buffers. Optimizers, clipping, checkpoints and verification work on the table
// and the flat buffers, never on layer objects.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace ratrain {

enum class InitKind { normal, ones };

struct ParamEntry {
  std::string name;
  Shape shape;
  std::int64_t offset = 0;  // in elements, into the flat buffers
  std::int64_t numel = 0;
  InitKind init = InitKind::normal;
};

class ParamTable {
 public:
  void add(std::string name, Shape shape, InitKind init);
  const std::vector<ParamEntry>& entries() const { return entries_; }
  // Throws ratrain::Error naming `name` if absent.
  const ParamEntry& find(const std::string& name) const;
  bool contains(const std::string& name) const;
  std::int64_t total_numel() const { return total_; }

 private:
  std::vector<ParamEntry> entries_;
  std::int64_t total_ = 0;
};

class ParamStore {
 public:
  ParamStore(ParamTable table, DType dtype, Device device);

  const ParamTable& table() const { return table_; }
  Tensor& values() { return values_; }  // (total,) flat, what the ops read
  Tensor& grads() { return grads_; }    // (total,) flat
  const Tensor& values() const { return values_; }
  const Tensor& grads() const { return grads_; }
  // (total,) f32: what the optimizer updates (the master copy, else the values).
  Tensor& optimizer_values() { return has_master() ? master_ : values_; }
  bool has_master() const { return master_.numel() > 0; }

  Tensor value(const std::string& name) const { return view_of(values_, name); }
  // Parameter `name` as the optimizer holds it (the f32 master where there is one).
  Tensor optimizer_value(const std::string& name) const {
    return view_of(has_master() ? master_ : values_, name);
  }
  Tensor grad(const std::string& name) const { return view_of(grads_, name); }

  // Sets parameter `name` from `source` (any dtype and device), master copy included.
  void assign(const std::string& name, const Tensor& source);
  // Rounds the master copy into the values; call after every optimizer update.
  void publish_master();

  // Draws every element from the counter-based RNG keyed by (seed, name, index):
  // N(0, std) for InitKind::normal, 1 for InitKind::ones.
  void initialize(std::uint64_t seed, double std);
  void zero_grads() { grads_.zero(); }

 private:
  Tensor view_of(const Tensor& flat, const std::string& name) const;
  ParamTable table_;
  Tensor values_;  // model dtype
  Tensor master_;  // f32 on the GPU when values_ are bf16; empty (numel 0) otherwise
  Tensor grads_;   // model dtype on the CPU, f32 on the GPU
};

}  // namespace ratrain
