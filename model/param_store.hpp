// Parameters and their gradients in one flat buffer each (DESIGN.md principle 3).
//
// Precision (DESIGN.md "Numerics"): on the CPU, values and gradients share the model's
// dtype and the values are their own master copy. On the GPU, gradients are f32 and, when
// the values (the copy every op reads) are bf16, an f32 master copy is what the optimizer
// updates; publish_master() then rounds it into the values.
//
// The table maps every parameter name (the authors' checkpoint names, e.g.
// `backbone.layers.3.seq_layer.in_proj.weight`) to its global shape, the part of it this
// rank holds (tensor parallelism splits one dimension), and that part's offset in the
// flat buffers. Optimizers, clipping, checkpoints and verification work on the table
// and the flat buffers, never on layer objects.
//
// Under pipeline parallelism each stage's table lists only the parameters of that stage
// (model/pipeline_stage.hpp), under their global names.
//
// The flat buffers may be longer than the table (`padded_numel`): ZeRO-1 cuts them into
// equal shards, one per data-parallel rank. The padding is zero and never read by a layer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/part_index_map.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

enum class InitKind { normal, ones };

// The part of a global tensor a rank holds. Dimension `dim` of the global tensor is
// `segments` equal blocks; the rank holds entries [begin, begin + length) of each block,
// in block order. Worked example, W_in (5d, d) with d = 8 over two TP ranks: dim 0,
// segments 5 (o, q, k, v, g), length 4; rank 1 (begin 4) holds global rows 4-7, 12-15,
// 20-23, 28-31 and 36-39 as its local rows 0-19.
struct ShardSpec {
  int dim = -1;  // -1: the whole tensor, identical on every rank of the group
  std::int64_t segments = 1;
  std::int64_t begin = 0;
  std::int64_t length = 0;

  static ShardSpec whole() { return {}; }
  bool is_whole() const { return dim < 0; }
};

// How many pipeline stages hold a parameter. The embedding is tied to the head, so with
// several stages the first (embedding) and the last (head) each hold a copy: equal
// values, gradients summed over the two and counted once in the gradient norm
// (model/adamw.hpp). Every other parameter, and everything with one stage: one.
enum class StageCopies { one, first_and_last };

struct ParamEntry {
  std::string name;
  Shape global_shape;
  Shape shape;              // the local part, global_shape with `shard.dim` cut
  ShardSpec shard;
  std::int64_t offset = 0;  // in elements, into the flat buffers
  std::int64_t numel = 0;   // of the local part
  InitKind init = InitKind::normal;
  StageCopies copies = StageCopies::one;

  // Where the local elements lie in the global tensor (row-major).
  PartIndexMap index_map() const;
  // The global row-major index of local element `i`.
  std::int64_t global_index(std::int64_t i) const { return index_map().global(i); }
};

class ParamTable {
 public:
  // `shard` cuts `global_shape` to what this rank holds (its whole by default).
  void add(std::string name, Shape global_shape, InitKind init,
           ShardSpec shard = ShardSpec::whole(), StageCopies copies = StageCopies::one);
  const std::vector<ParamEntry>& entries() const { return entries_; }
  // Throws ratrain::Error naming `name` if absent.
  const ParamEntry& find(const std::string& name) const;
  bool contains(const std::string& name) const;
  std::int64_t total_numel() const { return total_; }

 private:
  std::vector<ParamEntry> entries_;
  std::int64_t total_ = 0;
};

// Values that are still being completed after an optimizer step (ZeRO-1's all-gather of
// the updated values, model/adamw.hpp): whoever reads a range of the values first asks
// for it to be completed, so the next forward pass waits only for the layer it is about
// to run and the rest of the exchange overlaps its compute.
class PendingValues {
 public:
  virtual ~PendingValues() = default;
  // Afterwards flat elements [begin, end) of the values (and of the master copy) hold the
  // latest step's numbers on this rank (on the GPU: for work queued after this call).
  virtual void complete(std::int64_t begin, std::int64_t end) = 0;
};

class ParamStore {
 public:
  // The flat buffers hold table.total_numel() rounded up to a multiple of `shards`.
  ParamStore(ParamTable table, DType dtype, Device device, int shards = 1);

  // The accessors of values below return the latest optimizer step's numbers: they wait
  // for what is still in flight (await_values) first. Views kept across steps (the
  // layers' weights) must be awaited by their reader.
  const ParamTable& table() const { return table_; }
  std::int64_t padded_numel() const { return values_.numel(); }
  Tensor& values() { await_all_values(); return values_; }  // (padded,) flat, what the ops read
  Tensor& grads() { return grads_; }    // (padded,) flat
  const Tensor& values() const { await_all_values(); return values_; }
  const Tensor& grads() const { return grads_; }
  // (padded,): what the optimizer updates (the f32 master copy, else the values).
  Tensor& optimizer_values() { await_all_values(); return has_master() ? master_ : values_; }
  const Tensor& optimizer_values() const {
    await_all_values();
    return has_master() ? master_ : values_;
  }
  bool has_master() const { return master_.numel() > 0; }

  Tensor value(const std::string& name) const { return latest_view_of(values_, name); }
  // Parameter `name` as the optimizer holds it (the f32 master where there is one).
  Tensor optimizer_value(const std::string& name) const {
    return latest_view_of(has_master() ? master_ : values_, name);
  }
  Tensor grad(const std::string& name) const { return view_of(grads_, name); }

  // Sets parameter `name` from `source` (any dtype and device), master copy included.
  void assign(const std::string& name, const Tensor& source);
  // Rounds the master copy into the values; call after every optimizer update.
  void publish_master();
  // The same for flat elements [begin, begin + numel).
  void publish_master(std::int64_t begin, std::int64_t numel);

  // The flat range [begin, end) of the parameters whose names start with `prefix` (one
  // parameter, or one layer's, registered one after another); throws unless contiguous.
  std::pair<std::int64_t, std::int64_t> range_of(const std::string& prefix) const;
  // Readers of the values wait here for [begin, end) (or all of them) to hold the latest
  // optimizer step's numbers: a no-op unless a step left some in flight (`pending`, set
  // by the optimizer that completes them; null: nothing pending).
  void await_values(std::int64_t begin, std::int64_t end) const {
    if (pending_) pending_->complete(begin, end);
  }
  void await_values(const std::pair<std::int64_t, std::int64_t>& range) const {
    await_values(range.first, range.second);
  }
  void await_all_values() const { await_values(0, padded_numel()); }
  void set_pending(PendingValues* pending) { pending_ = pending; }

  // Draws every element from the counter-based RNG keyed by (seed, name, global index):
  // N(0, std) for InitKind::normal, 1 for InitKind::ones. Any sharding of the table
  // therefore holds the same numbers as one process (DESIGN.md principle 4).
  void initialize(std::uint64_t seed, double std);
  void zero_grads() { grads_.zero(); }

 private:
  Tensor view_of(const Tensor& flat, const std::string& name) const;
  // view_of once the parameter's values are the latest (await_values).
  Tensor latest_view_of(const Tensor& flat, const std::string& name) const;
  ParamTable table_;
  Tensor values_;  // model dtype
  Tensor master_;  // f32 on the GPU when values_ are bf16; empty (numel 0) otherwise
  Tensor grads_;   // model dtype on the CPU, f32 on the GPU
  PendingValues* pending_ = nullptr;
};

}  // namespace ratrain
