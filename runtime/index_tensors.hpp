// Index lists of the sequence-parallel exchanges (copy_rows' row lists, the key positions
// of the key-set attention ops and their global rows) as i32 tensors on a device, each
// distinct list uploaded once and kept for the rest of the process, with its host copy.
//
// Why: the lists depend only on the layout, T and the attention rule, so a run needs a
// handful, but they were built per call. On a GPU each upload is a synchronous cudaMemcpy
// on the legacy default stream, which is the compute stream (runtime/compute_stream.hpp):
// it waits for every queued kernel, so one upload per row copy and per ring step drained
// the GPU's queue several times a layer, and the ring's transfers had nothing left to
// overlap with. The key-set ops also read the positions on the host (to check them, and to
// find the global keys): host_values_of gives them the kept host copy instead of a
// device-to-host copy, the same kind of drain. On the host a cached list only saves its
// allocation.
//
// The tensors returned share the cache's storage: read them, never write them. The cache
// is bounded (kMaxCachedElements); past it, it starts over, and tensors already returned
// keep their storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

namespace ratrain {

// `values` as an i32 tensor (n) on `device`.
Tensor index_tensor(const std::vector<std::int32_t>& values, Device device);

// The values of an i32 tensor on the host: `t` itself on the host; for a device tensor
// that index_tensor returned (and still holds), its kept host copy; else a copy from the
// device (synchronous).
Tensor host_values_of(const Tensor& t);

// The lists held now (for tests).
std::size_t cached_index_tensors();

}  // namespace ratrain
