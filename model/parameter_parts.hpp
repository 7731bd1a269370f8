// Moving between a parameter's global tensor and the part of it a rank holds
// (ParamEntry::shard): reading a model file into a tensor-parallel model, and writing
// one from it. The index arithmetic lives in ParamEntry::global_index.
#pragma once

#include "model/param_store.hpp"
#include "parallel/group.hpp"

namespace ratrain {

// The part of `global` (entry.global_shape, a host tensor) that `entry` describes, as a
// new host tensor of entry.shape and global's dtype.
Tensor local_part(const ParamEntry& entry, const Tensor& global);

// Parameter `entry`'s global tensor on the host (the optimizer's precision: the f32
// master copy where there is one), assembled from the parts of the ranks of `tp`.
// Collective over tp: every TP rank must call it for the same entries in the same order.
Tensor gather_parameter(const ParamStore& store, const ParamEntry& entry, const Group& tp);

}  // namespace ratrain
